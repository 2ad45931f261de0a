"""Watch results, snapshots (hang dumps) and live progress as HTML and Markdown. Pure."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple


from pydbgauto.display.common import (
    _details_html,
    _e,
    _hex,
    _html_kv,
    _md_table,
    _root,
    _table,
    is_framework_frame,
    markdown_escape,
)
from pydbgauto.display.events import (
    _capture_body_html,
    _capture_md_lines,
    _decision_fields,
    _dump_body_html,
    _dump_md_lines,
    _event_head_html,
    _event_title,
)
from pydbgauto.display.objects import (
    _exception_body_html,
    _exception_md_lines,
    _stack_body_html,
    threads_html,
)


def _as_sequence(value: Any) -> Optional[Sequence[Any]]:
    if value is None or isinstance(value, (str, bytes, int)):
        return None
    return tuple(value)


def _watch_summary(result: Any) -> str:
    captures = _as_sequence(getattr(result, "captures", None)) or ()
    decisions = _as_sequence(getattr(result, "decisions", None))
    seen = getattr(result, "events_seen", None)
    seen_seq = _as_sequence(seen)
    parts = []
    thrown = getattr(result, "thrown", None)
    if isinstance(thrown, int) and not isinstance(thrown, bool):
        parts.append(f"{thrown} thrown (the runtime's count)")
    if seen_seq is not None:
        parts.append(f"{len(seen_seq)} events seen")
    elif isinstance(seen, int):
        parts.append(f"{seen} events seen")
    if decisions is not None:
        parts.append(f"{len(decisions)} decisions")
    parts.append(f"{len(captures)} captures")
    text = ", ".join(parts)
    ended, elapsed = getattr(result, "ended", None), getattr(result, "elapsed", None)
    if isinstance(ended, str):
        text += f"; ended: {ended}"
        if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool):
            text += f" after {elapsed:.1f} s"
    return text


def _watch_decision_rows(result: Any) -> List[Tuple[str, str, str, str]]:
    rows = []
    for i, item in enumerate(_as_sequence(getattr(result, "decisions", None)) or ()):
        # a decision, or an (event, decision) pair
        event = None
        if isinstance(item, tuple) and len(item) == 2:
            event, item = item
        action, reason, detail = _decision_fields(item)
        rows.append((str(i) if event is None else _event_title(event), action, reason, detail))
    return rows


def watch_result_html(result: Any) -> str:
    """A watch result: counts, the decisions taken, then each capture (the first one open)."""
    parts = [f'<div class="pdg-head pdg-label">{_e(_watch_summary(result))}</div>']
    rows = [
        f'<tr><td>{_e(n)}</td><td><span class="pdg-badge pdg-action">{_e(action)}</span></td>'
        f"<td>{_e(reason)}</td><td>{_e(detail)}</td></tr>"
        for n, action, reason, detail in _watch_decision_rows(result)
    ]
    if rows:
        parts.append(_table(("#", "action", "reason", "detail"), rows, "pdg-decisions"))
    for i, record in enumerate(_as_sequence(getattr(result, "captures", None)) or ()):
        parts.append(_details_html(f"capture {i + 1}", _capture_body_html(record), open_=i == 0))
    parts.append(_watch_log_html(result))
    return _root("watch", "".join(parts))


def watch_result_markdown(result: Any) -> str:
    """A watch result as Markdown."""
    lines = [markdown_escape(_watch_summary(result)), ""]
    rows = [[markdown_escape(c) for c in row] for row in _watch_decision_rows(result)]
    if rows:
        lines += [_md_table(("#", "action", "reason", "detail"), rows), ""]
    for i, record in enumerate(_as_sequence(getattr(result, "captures", None)) or ()):
        lines += [f"**Capture {i + 1}**", ""] + _capture_md_lines(record)
    return "\n".join(lines).rstrip() + "\n"


def _watch_log_html(result: Any) -> str:
    log_path = getattr(result, "log_path", None)
    if not isinstance(log_path, str):
        return ""
    return f'<div class="pdg-none">decision log: <span class="pdg-mono">{_e(log_path)}</span></div>'


# ---------------------------------------------------------------------------------------------
# snapshots (hang dumps) and live progress


def _snapshot_summary(record: Any) -> str:
    threads = getattr(record, "threads", None)
    count = len(threads.threads) if threads is not None else 0
    stacks = _as_sequence(getattr(record, "stacks", None)) or ()
    exceptions = _as_sequence(getattr(record, "exceptions", None)) or ()
    return f"{count} managed threads, {len(stacks)} managed stacks, {len(exceptions)} current exceptions"


def _top_frame_text(stack: Any) -> str:
    for frame in getattr(stack, "frames", ()):
        if frame.kind == "managed" and not is_framework_frame(frame):
            return frame.method or frame.call_site
    for frame in getattr(stack, "frames", ()):
        if frame.kind == "managed":
            return frame.method or frame.call_site
    return "(no managed frame)"


def snapshot_html(record: Any) -> str:
    """A snapshot (hang dump): the stop, the current exceptions, every managed stack (closed, the top
    user frame in the summary), the thread table and the dump."""
    parts = [f'<div class="pdg-head pdg-label">{_e(_snapshot_summary(record))}</div>']
    event = getattr(record, "event", None)
    if event is not None:
        parts.append(_event_head_html(event))
    for item in _as_sequence(getattr(record, "exceptions", None)) or ():
        body = (
            _exception_body_html(item.exception)
            if item.exception is not None
            else f'<div class="pdg-error">{_e(item.error)}</div>'
        )
        parts.append(_details_html(f"exception on thread {_hex(item.thread_id)}", body))
    for stack in _as_sequence(getattr(record, "stacks", None)) or ():
        summary = f"thread {_hex(stack.os_thread_id)}: {_top_frame_text(stack)}"
        parts.append(_details_html(summary, _stack_body_html(stack, None), open_=False))
    threads = getattr(record, "threads", None)
    if threads is not None:
        parts.append(_details_html("threads", threads_html(threads), open_=False))
    dump = getattr(record, "dump", None)
    if dump is not None:
        parts.append(_details_html("dump", _dump_body_html(dump)))
    elif getattr(record, "dump_error", None):
        parts.append(f'<div class="pdg-error">no dump: {_e(record.dump_error)}</div>')
    for problem in _as_sequence(getattr(record, "errors", None)) or ():
        parts.append(f'<div class="pdg-error">could not read: {_e(problem)}</div>')
    return _root("snapshot", "".join(parts))


def snapshot_markdown(record: Any) -> str:
    """A snapshot as Markdown."""
    lines = [markdown_escape(_snapshot_summary(record)), ""]
    event = getattr(record, "event", None)
    if event is not None:
        lines += [f"**{markdown_escape(str(event).splitlines()[0])}**", ""]
    for item in _as_sequence(getattr(record, "exceptions", None)) or ():
        lines += [f"Exception on thread {_hex(item.thread_id)}:", ""]
        lines += (
            _exception_md_lines(item.exception)
            if item.exception is not None
            else [markdown_escape(item.error)]
        )
    for stack in _as_sequence(getattr(record, "stacks", None)) or ():
        lines.append(f"- thread {_hex(stack.os_thread_id)}: {markdown_escape(_top_frame_text(stack))}")
    lines.append("")
    dump = getattr(record, "dump", None)
    if dump is not None:
        lines += ["Dump:", ""] + _dump_md_lines(dump)
    return "\n".join(lines).rstrip() + "\n"


def progress_html(progress: Any) -> str:
    """A watch in progress (``pydbgauto.progress.Progress``): counts, what it does, the last exception."""
    minutes, seconds = divmod(int(getattr(progress, "elapsed", 0.0)), 60)
    pairs = [
        ("status", _e(getattr(progress, "status", ""))),
        ("elapsed", f"{minutes}:{seconds:02d}"),
        ("exceptions seen", _e(getattr(progress, "seen", 0))),
        ("matched", _e(getattr(progress, "matched", 0))),
        ("dumps", _e(getattr(progress, "dumps", 0))),
    ]
    if getattr(progress, "failed_dumps", 0):
        pairs.append(("failed dumps", f'<span class="pdg-bad">{_e(progress.failed_dumps)}</span>'))
    if getattr(progress, "pid", None) is not None:
        pairs.append(("process", _e(progress.pid)))
    if getattr(progress, "last", ""):
        pairs.append(("last exception", _e(progress.last)))
    return _root("progress", _html_kv(pairs, "pdg-progress"))
