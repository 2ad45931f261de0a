"""StopEvent, DumpRecord and capture records as HTML and Markdown. Pure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Tuple


from pydbgauto.display.common import _details_html, _e, _hex, _html_kv, _root, _source, markdown_escape
from pydbgauto.display.objects import (
    _exception_body_html,
    _exception_md_lines,
    _stack_body_html,
    _stack_md_lines,
)

if TYPE_CHECKING:  # the session models are only needed for the annotations
    from pydbgauto.models import (
        DumpRecord,
        ManagedException,
        ManagedStack,
        StackFrame,
        StopEvent,
    )


# ---------------------------------------------------------------------------------------------
# StopEvent


def _when(seconds: float) -> str:
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _event_title(event: StopEvent) -> str:
    if event.kind == "exit":
        return f"#{event.sequence} exit (status {event.exit_status})"
    what = event.exception_type or "unknown exception"
    return (
        f"#{event.sequence} {event.kind} {what} at {_hex(event.exception_address)}"
        f" on thread {_hex(event.thread_id)}"
    )


def _site_text(site: StackFrame) -> str:
    src = _source(site.source_file, site.line)
    return (site.method or site.call_site) + (f" ({src})" if src else "")


def _event_facts(event: StopEvent) -> List[Tuple[str, str]]:
    """(label, plain text) pairs shown under the title; the caller escapes."""
    facts = []
    site = event.throw_site
    if site is not None:
        facts.append(("thrown in", _site_text(site)))
    if event.type_chain:
        facts.append(("type chain", " \u2192 ".join(event.type_chain)))
    if event.pid is not None:
        facts.append(("process", f"{event.pid} ({_hex(event.pid)})"))
    if event.description:
        facts.append(("description", event.description))
    if event.time:
        facts.append(("time", _when(event.time)))
    return facts


def _event_head_html(event: StopEvent) -> str:
    parts = [f'<div class="pdg-head"><span class="pdg-badge pdg-kind">{_e(event.kind)}</span> ']
    parts.append(f'<span class="pdg-type">{_e(_event_title(event))}</span></div>')
    facts = _event_facts(event)
    if facts:
        parts.append(_html_kv([(k, _e(v)) for k, v in facts], "pdg-facts"))
    if event.error:
        parts.append(f'<div class="pdg-error">{_e(event.error)}</div>')
    return "".join(parts)


def _event_parts_html(
    event: Optional[StopEvent], exception: Optional[ManagedException], stack: Optional[ManagedStack]
) -> str:
    parts = []
    if event is not None:
        parts.append(_event_head_html(event))
    if exception is not None:
        parts.append(_details_html("exception", _exception_body_html(exception)))
    if stack is not None:
        site = event.throw_site if event is not None else None
        parts.append(_details_html("stack", _stack_body_html(stack, site)))
    return "".join(parts)


def event_html(event: StopEvent) -> str:
    """A ``StopEvent``: title, message, throw site, then the exception and the stack (throw site marked)."""
    return _root("event", _event_parts_html(event, event.exception, event.stack))


def _event_md_lines(
    event: Optional[StopEvent], exception: Optional[ManagedException], stack: Optional[ManagedStack]
) -> List[str]:
    lines: List[str] = []
    if event is not None:
        lines += [f"**{markdown_escape(_event_title(event))}**", ""]
        for label, text in _event_facts(event):
            lines.append(f"- {label}: {markdown_escape(text)}")
        if event.error:
            lines.append(f"- error: {markdown_escape(event.error)}")
        if lines[-1] != "":
            lines.append("")
    if exception is not None:
        lines += ["Exception:", ""] + _exception_md_lines(exception)
    if stack is not None:
        site = event.throw_site if event is not None else None
        lines += ["Stack:", ""] + _stack_md_lines(stack, site)
    return lines


def event_markdown(event: StopEvent) -> str:
    """A ``StopEvent`` as Markdown."""
    return "\n".join(_event_md_lines(event, event.exception, event.stack)).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# DumpRecord


def _dump_facts(record: DumpRecord) -> List[Tuple[str, str, str]]:
    """(label, plain text, css class) rows."""
    if record.verified:
        state, cls = "\u2713 verified", "pdg-ok"
    elif record.verify_error:
        state, cls = f"\u2717 NOT verified: {record.verify_error}", "pdg-bad"
    else:
        state, cls = "not verified", "pdg-none"
    rows = [
        ("path", record.path, "pdg-mono"),
        ("size", f"{record.size / 1e6:.1f} MB ({record.size} bytes)", ""),
        ("written in", f"{record.seconds:.2f} s", ""),
        ("verification", state, cls),
    ]
    if record.reader:
        rows.append(("reader", record.reader, ""))
    if record.verify_seconds is not None:
        rows.append(("verified in", f"{record.verify_seconds:.2f} s", ""))
    if record.seen_exception_type:
        rows.append(("exception in dump", record.seen_exception_type, ""))
    if record.seen_thread_id is not None:
        rows.append(("thread in dump", _hex(record.seen_thread_id), "pdg-mono"))
    if record.sha256:
        rows.append(("sha256", record.sha256, "pdg-mono"))
    return rows


def _dump_body_html(record: DumpRecord) -> str:
    pairs = [
        (label, f'<span class="{cls}">{_e(text)}</span>' if cls else _e(text))
        for label, text, cls in _dump_facts(record)
    ]
    return _html_kv(pairs, "pdg-dump-facts")


def dump_html(record: DumpRecord) -> str:
    """A ``DumpRecord``: path, size, timings and what the independent reader saw."""
    return _root("dump", _dump_body_html(record))


def _dump_md_lines(record: DumpRecord) -> List[str]:
    return [f"- {label}: {markdown_escape(text)}" for label, text, _ in _dump_facts(record)] + [""]


def dump_markdown(record: DumpRecord) -> str:
    """A ``DumpRecord`` as Markdown."""
    return "\n".join(_dump_md_lines(record)).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# capture records and watch results (duck-typed: read by attribute name only)


def _detail_text(detail: Any) -> str:
    if detail is None:
        return ""
    if isinstance(detail, Mapping):
        return ", ".join(f"{k}={v}" for k, v in detail.items())
    return str(detail)


def _decision_fields(decision: Any) -> Tuple[str, str, str]:
    return (
        str(getattr(decision, "action", "") or ""),
        str(getattr(decision, "reason", "") or ""),
        _detail_text(getattr(decision, "detail", None)),
    )


def _capture_parts(record: Any) -> Tuple[Any, Any, Any, Any, Any]:
    event = getattr(record, "event", None)
    exception = getattr(record, "exception", None)
    stack = getattr(record, "stack", None)
    if exception is None and event is not None:
        exception = getattr(event, "exception", None)
    if stack is None and event is not None:
        stack = getattr(event, "stack", None)
    return getattr(record, "decision", None), event, exception, stack, getattr(record, "dump", None)


def _decision_html(decision: Any) -> str:
    action, reason, detail = _decision_fields(decision)
    html_ = f'<div class="pdg-decision"><span class="pdg-badge pdg-action">{_e(action or "?")}</span>'
    if reason:
        html_ += f" {_e(reason)}"
    if detail:
        html_ += f' <span class="pdg-detail pdg-none">({_e(detail)})</span>'
    return html_ + "</div>"


def _capture_body_html(record: Any) -> str:
    decision, event, exception, stack, dump = _capture_parts(record)
    parts = []
    if decision is not None:
        parts.append(_decision_html(decision))
    parts.append(_event_parts_html(event, exception, stack))
    if dump is not None:
        parts.append(_details_html("dump", _dump_body_html(dump)))
    return "".join(parts)


def capture_html(record: Any) -> str:
    """A capture record: its decision, event, exception, stack and dump (any of them may be absent)."""
    return _root("capture", _capture_body_html(record))


def _capture_md_lines(record: Any) -> List[str]:
    decision, event, exception, stack, dump = _capture_parts(record)
    lines: List[str] = []
    if decision is not None:
        action, reason, detail = _decision_fields(decision)
        line = f"Decision: **{markdown_escape(action or '?')}**"
        line += f" {markdown_escape(reason)}" if reason else ""
        line += f" ({markdown_escape(detail)})" if detail else ""
        lines += [line, ""]
    lines += _event_md_lines(event, exception, stack)
    if dump is not None:
        lines += ["Dump:", ""] + _dump_md_lines(dump)
    return lines


def capture_markdown(record: Any) -> str:
    """A capture record as Markdown."""
    return "\n".join(_capture_md_lines(record)).rstrip() + "\n"
