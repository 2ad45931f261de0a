"""Notebook display: the models rendered as HTML and Markdown, for Jupyter and reports.

Pure functions, no I/O. Every piece of text that came from the target or the debugger (messages,
type names, method signatures, paths) is escaped: ``html.escape(..., quote=True)`` for HTML and
:func:`markdown_escape` for Markdown. The HTML is self-contained: one small ``<style>`` scoped under
the root class ``pydbgauto``, no JavaScript, no external resources.

Public functions (each has a ``*_markdown`` twin with the same argument):

- :func:`exception_html` -- a ``ManagedException``: type, message, HResult, inner hint, nested
  exceptions, and its frames.
- :func:`stack_html` -- a ``ManagedStack``: frames with ``file:line``, user frames bold, framework
  frames (``System.``, ``Microsoft.``, ``Internal.``, runtime and native frames) muted, the throw site
  marked when it is given.
- :func:`threads_html` -- a ``ThreadTable``.
- :func:`event_html` -- a ``StopEvent`` with its exception and its stack (throw site marked).
- :func:`dump_html` -- a ``DumpRecord``.
- :func:`capture_html` / :func:`watch_result_html` -- a capture record and a watch result, read by
  attribute name only (``record.event/.exception/.stack/.dump/.decision``;
  ``result.captures/.decisions/.events_seen``), so they work with any object of that shape.

:func:`install_reprs` attaches ``_repr_html_`` and ``_repr_markdown_`` to the model classes.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Sequence, Tuple

from pydbgauto import models
from pydbgauto.models import hex_text as _hex

if TYPE_CHECKING:  # the session models are only needed for the annotations
    from pydbgauto.models import (
        DumpRecord,
        ExceptionFrame,
        ManagedException,
        ManagedStack,
        StackFrame,
        StopEvent,
        ThreadTable,
    )

__all__ = [
    "FRAMEWORK_PREFIXES",
    "capture_html",
    "capture_markdown",
    "dump_html",
    "dump_markdown",
    "event_html",
    "event_markdown",
    "exception_html",
    "exception_markdown",
    "install_reprs",
    "is_framework_frame",
    "markdown_escape",
    "progress_html",
    "snapshot_html",
    "snapshot_markdown",
    "stack_html",
    "stack_markdown",
    "threads_html",
    "threads_markdown",
    "watch_result_html",
    "watch_result_markdown",
]

# A frame whose method starts with one of these is the framework's, not the user's code.
FRAMEWORK_PREFIXES = ("System.", "Microsoft.", "Internal.")

THROW_SITE_LABEL = "\u25b6 thrown here"

# Every selector starts with ".pydbgauto", so nothing leaks into the rest of the page.
_CSS = (
    ".pydbgauto{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;line-height:1.45}"
    ".pydbgauto code,.pydbgauto .pdg-mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}"
    ".pydbgauto table{border-collapse:collapse;margin:4px 0 8px 0}"
    ".pydbgauto th,.pydbgauto td{padding:1px 8px;text-align:left;vertical-align:top;"
    "border-bottom:1px solid rgba(128,128,128,.25)}"
    ".pydbgauto th{font-weight:600}"
    ".pydbgauto .pdg-head{margin:2px 0}"
    ".pydbgauto .pdg-type{font-weight:bold}"
    ".pydbgauto .pdg-msg{white-space:pre-wrap;margin:2px 0 4px 0}"
    ".pydbgauto .pdg-none,.pydbgauto .pdg-framework{opacity:.6}"
    ".pydbgauto .pdg-user{font-weight:bold}"
    ".pydbgauto .pdg-throw-site{background:rgba(255,190,0,.18)}"
    ".pydbgauto .pdg-marker{color:#c0392b;font-weight:bold;white-space:nowrap}"
    ".pydbgauto .pdg-nested{margin:6px 0 6px 1.2em;padding-left:.6em;"
    "border-left:3px solid rgba(128,128,128,.4)}"
    ".pydbgauto .pdg-label{font-weight:600;opacity:.8}"
    ".pydbgauto .pdg-badge{display:inline-block;padding:0 .4em;border:1px solid currentColor;"
    "border-radius:3px;font-size:90%}"
    ".pydbgauto .pdg-error,.pydbgauto .pdg-bad{color:#c0392b}"
    ".pydbgauto .pdg-ok{color:#1e8449}"
    ".pydbgauto .pdg-finalizer{color:#8e44ad}"
    ".pydbgauto .pdg-has-exception{background:rgba(192,57,43,.08)}"
    ".pydbgauto .pdg-dead{opacity:.6}"
    ".pydbgauto pre{white-space:pre-wrap;margin:2px 0}"
    ".pydbgauto details{margin:4px 0}"
)
_STYLE = f"<style>{_CSS}</style>"


# ---------------------------------------------------------------------------------------------
# shared helpers


def _e(text: object) -> str:
    """HTML-escape any value's ``str``, quotes included (safe in text and in quoted attributes)."""
    return html.escape(str(text), quote=True)


_MD_ESCAPES = {
    "\\": "\\\\",
    "`": "\\`",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "|": "\\|",
    "~": "\\~",
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
}


def markdown_escape(text: object) -> str:
    """Escape untrusted text for one line of Markdown (a paragraph or a table cell).

    Markdown punctuation is backslash-escaped, ``<``/``>``/``&`` become entities (so no raw HTML
    gets through), and line breaks become ``<br>``, so the text cannot start a new block or row.
    """
    value = str(text).replace("\r\n", "\n").replace("\r", "\n")
    escaped = "".join(_MD_ESCAPES.get(ch, ch) for ch in value)
    return escaped.replace("\n", "<br>")


def _hresult(value: int) -> str:
    return "0x%08X" % (value & 0xFFFFFFFF)


def _col(value: Optional[int], width: int = 16) -> str:
    return "" if value is None else format(value, f"0{width}x")


def _source(source_file: Optional[str], line: Optional[int]) -> str:
    if not source_file:
        return ""
    return source_file if line is None else f"{source_file}:{line}"


def _root(kind: str, body: str) -> str:
    return f'<div class="pydbgauto pdg-{kind}">{_STYLE}{body}</div>'


def _table(headers: Sequence[str], rows: Sequence[str], cls: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells must already be Markdown (escaped); headers are fixed text."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: str) -> str:
    """A Markdown code span for text we formatted ourselves (hex numbers); never for untrusted text."""
    return f"`{text}`" if text else ""


def _html_kv(pairs: Sequence[Tuple[str, str]], cls: str) -> str:
    """A two-column key/value table; the values are HTML already."""
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<table class="{cls}"><tbody>{rows}</tbody></table>'


# ---------------------------------------------------------------------------------------------
# frames: user or framework


def is_framework_frame(frame: Any) -> bool:
    """True for the runtime's and the framework's frames, False for the user's own code.

    Runtime (``[HelperMethodFrame: ...]``) and native frames are framework; a managed frame is
    framework when its method (or call site) starts with one of :data:`FRAMEWORK_PREFIXES`.
    Works for ``StackFrame`` and ``ExceptionFrame``.
    """
    if getattr(frame, "kind", "managed") != "managed":
        return True
    name = getattr(frame, "method", None) or getattr(frame, "call_site", None) or ""
    return name.startswith(FRAMEWORK_PREFIXES)


def _frame_classes(frame: Any, throw_site: bool) -> str:
    cls = "pdg-frame " + ("pdg-framework" if is_framework_frame(frame) else "pdg-user")
    kind = getattr(frame, "kind", None)
    if kind:
        cls += f" pdg-kind-{kind}"
    return cls + (" pdg-throw-site" if throw_site else "")


def _marker_html(throw_site: bool) -> str:
    inner = f'<span class="pdg-marker" title="throw site">{_e(THROW_SITE_LABEL)}</span>' if throw_site else ""
    return f'<td class="pdg-mark">{inner}</td>'


def _site_html(frame: Any, text: str) -> str:
    body = f"<code>{_e(text)}</code>"
    if not is_framework_frame(frame):
        body = f"<b>{body}</b>"  # bold also where a viewer drops the <style>
    return f'<td class="pdg-site" title="{_e(text)}">{body}</td>'


def _site_md(frame: Any, text: str) -> str:
    escaped = markdown_escape(text)
    return escaped if is_framework_frame(frame) else f"**{escaped}**"


def _xframe_text(frame: ExceptionFrame) -> str:
    where = f"{frame.module}!" if frame.module else ""
    off = f"+0x{frame.offset:x}" if frame.offset is not None else ""
    return f"{where}{frame.method}{off}"


# ---------------------------------------------------------------------------------------------
# ManagedException


def _xframes_html(frames: Sequence[ExceptionFrame]) -> str:
    rows = []
    for i, frame in enumerate(frames):
        top = i == 0  # pe's generated stack trace starts at the frame that threw
        rows.append(
            f'<tr class="{_frame_classes(frame, top)}">{_marker_html(top)}'
            f"{_site_html(frame, _xframe_text(frame))}"
            f'<td class="pdg-source">{_e(_source(frame.source_file, frame.line))}</td></tr>'
        )
    return _table(("", "frame", "source"), rows, "pdg-frames")


def _exception_body_html(exc: ManagedException) -> str:
    parts = ['<div class="pdg-head">']
    parts.append(f'<span class="pdg-type">{_e(exc.type or "<unknown type>")}</span>')
    parts.append(f' at <code class="pdg-addr">{_e(_hex(exc.address))}</code>')
    if exc.hresult is not None:
        parts.append(f' <span class="pdg-badge pdg-hresult">HResult {_e(_hresult(exc.hresult))}</span>')
    parts.append("</div>")
    if exc.message is None:
        parts.append('<div class="pdg-msg pdg-none">(no message)</div>')
    else:
        parts.append(f'<div class="pdg-msg">{_e(exc.message)}</div>')
    if exc.inner_type is not None or exc.inner_address is not None:
        parts.append(
            '<div class="pdg-inner"><span class="pdg-label">inner exception:</span> '
            f'<span class="pdg-type">{_e(exc.inner_type or "?")}</span>'
            f' at <code class="pdg-addr">{_e(_hex(exc.inner_address))}</code></div>'
        )
    if exc.frames:
        parts.append(_xframes_html(exc.frames))
    else:
        parts.append('<div class="pdg-none">(no stack trace)</div>')
    if exc.stack_trace_string is not None:
        parts.append(
            '<div class="pdg-label">StackTraceString:</div>'
            f'<pre class="pdg-sts">{_e(exc.stack_trace_string)}</pre>'
        )
    for nested in exc.nested:
        parts.append(
            '<div class="pdg-nested"><div class="pdg-label">nested exception</div>'
            f"{_exception_body_html(nested)}</div>"
        )
    if exc.has_nested and not exc.nested:
        parts.append('<div class="pdg-note">there are nested exceptions on this thread (pe -nested)</div>')
    if exc.fields is not None:
        rows = [
            f'<tr><td class="pdg-mono">{_e(f.name)}</td><td>{_e(f.object_type or f.type)}</td>'
            f'<td class="pdg-mono">{_e(_field_value_text(f))}</td></tr>'
            for f in exc.fields
        ]
        parts.append(
            _details_html("fields", _table(("field", "type", "value"), rows, "pdg-fields"), open_=False)
        )
    return "".join(parts)


def _field_value_text(f: Any) -> str:
    if f.address is not None and not isinstance(f.value, str):
        return _hex(f.address)
    return "null" if f.value is None else repr(f.value) if isinstance(f.value, str) else str(f.value)


def exception_html(exc: ManagedException) -> str:
    """A ``ManagedException`` (``pe``) as an HTML fragment."""
    return _root("exception", _exception_body_html(exc))


def _exception_md_lines(exc: ManagedException, depth: int = 0) -> List[str]:
    head = f"**{markdown_escape(exc.type or '<unknown type>')}** at {_code(_hex(exc.address))}"
    if exc.hresult is not None:
        head += f" · HResult {_code(_hresult(exc.hresult))}"
    lines = [head, ""]
    message = "*(no message)*" if exc.message is None else markdown_escape(exc.message)
    lines += [f"Message: {message}", ""]
    if exc.inner_type is not None or exc.inner_address is not None:
        inner = markdown_escape(exc.inner_type or "?")
        lines += [f"Inner exception: **{inner}** at {_code(_hex(exc.inner_address))}", ""]
    if exc.frames:
        rows = [
            [
                THROW_SITE_LABEL if i == 0 else "",
                _site_md(frame, _xframe_text(frame)),
                markdown_escape(_source(frame.source_file, frame.line)),
            ]
            for i, frame in enumerate(exc.frames)
        ]
        lines += [_md_table(("", "frame", "source"), rows), ""]
    else:
        lines += ["*(no stack trace)*", ""]
    if exc.stack_trace_string is not None:
        lines += [f"StackTraceString: {markdown_escape(exc.stack_trace_string)}", ""]
    for nested in exc.nested:
        lines += [f"Nested exception (level {depth + 1}):", ""]
        lines += _exception_md_lines(nested, depth + 1)
    if exc.has_nested and not exc.nested:
        lines += ["There are nested exceptions on this thread (pe -nested).", ""]
    if exc.fields is not None:
        rows = [
            [
                markdown_escape(f.name),
                markdown_escape(f.object_type or f.type),
                markdown_escape(_field_value_text(f)),
            ]
            for f in exc.fields
        ]
        lines += ["Fields:", "", _md_table(("field", "type", "value"), rows), ""]
    return lines


def exception_markdown(exc: ManagedException) -> str:
    """A ``ManagedException`` as Markdown."""
    return "\n".join(_exception_md_lines(exc)).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# ManagedStack


def _is_site(frame: StackFrame, throw_site: Optional[StackFrame], marked: bool) -> bool:
    return not marked and throw_site is not None and (frame is throw_site or frame == throw_site)


def _stack_head(stack: ManagedStack) -> str:
    idx = "" if stack.debugger_thread_index is None else f" (debugger thread {stack.debugger_thread_index})"
    return f"OS thread {_hex(stack.os_thread_id)}{idx}"


def _stack_body_html(stack: ManagedStack, throw_site: Optional[StackFrame]) -> str:
    parts = [f'<div class="pdg-head pdg-label">{_e(_stack_head(stack))}</div>']
    rows = []
    marked = False
    for frame in stack.frames:
        site = _is_site(frame, throw_site, marked)
        marked = marked or site
        rows.append(
            f'<tr class="{_frame_classes(frame, site)}">{_marker_html(site)}'
            f'<td class="pdg-mono">{_col(frame.sp)}</td><td class="pdg-mono">{_col(frame.ip)}</td>'
            f"{_site_html(frame, frame.call_site)}"
            f'<td class="pdg-source">{_e(_source(frame.source_file, frame.line))}</td></tr>'
        )
    if rows:
        parts.append(_table(("", "SP", "IP", "call site", "source"), rows, "pdg-frames"))
    else:
        parts.append('<div class="pdg-none">(no frames)</div>')
    if stack.error:
        parts.append(f'<div class="pdg-error">{_e(stack.error)}</div>')
    if stack.truncated:  # a stack too deep to read whole: what was cut (pydbgauto.sos.deepstack)
        parts.append(f'<div class="pdg-note">{_e(stack.truncated)}</div>')
    return "".join(parts)


def stack_html(stack: ManagedStack, throw_site: Optional[StackFrame] = None) -> str:
    """A ``ManagedStack`` (``clrstack``) as HTML; ``throw_site`` (e.g. ``StopEvent.throw_site``) is marked.

    A stack alone does not know whether its thread threw, so nothing is marked unless told.
    """
    return _root("stack", _stack_body_html(stack, throw_site))


def _stack_md_lines(stack: ManagedStack, throw_site: Optional[StackFrame]) -> List[str]:
    lines = [f"**{markdown_escape(_stack_head(stack))}**", ""]
    rows = []
    marked = False
    for frame in stack.frames:
        site = _is_site(frame, throw_site, marked)
        marked = marked or site
        rows.append(
            [
                THROW_SITE_LABEL if site else "",
                _code(_col(frame.sp)),
                _code(_col(frame.ip)),
                _site_md(frame, frame.call_site),
                markdown_escape(_source(frame.source_file, frame.line)),
            ]
        )
    if rows:
        lines += [_md_table(("", "SP", "IP", "call site", "source"), rows), ""]
    else:
        lines += ["*(no frames)*", ""]
    if stack.error:
        lines += [f"Error: {markdown_escape(stack.error)}", ""]
    if stack.truncated:
        lines += [f"Cut: {markdown_escape(stack.truncated)}", ""]
    return lines


def stack_markdown(stack: ManagedStack, throw_site: Optional[StackFrame] = None) -> str:
    """A ``ManagedStack`` as Markdown: user frames bold, the throw site (when given) marked."""
    return "\n".join(_stack_md_lines(stack, throw_site)).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# ThreadTable

_THREAD_HEADERS = ("DBG", "ID", "OSID", "ThreadOBJ", "State", "GC mode", "Apt", "special", "exception")


def _thread_counts(table: ThreadTable) -> str:
    def n(value: Optional[int]) -> str:
        return "?" if value is None else str(value)

    text = (
        f"{n(table.thread_count)} threads, {n(table.unstarted)} unstarted, {n(table.background)} background, "
        f"{n(table.pending)} pending, {n(table.dead)} dead"
    )
    if table.hosted_runtime is not None:
        text += f"; hosted runtime: {table.hosted_runtime}"
    return text


def _thread_exception(thread: models.ManagedThread) -> str:
    if not thread.exception_type:
        return ""
    text = f"{thread.exception_type} {_hex(thread.exception_address)}"
    return text + (" (nested exceptions)" if thread.nested else "")


def _special_html(special: Optional[str]) -> str:
    if not special:
        return ""
    items = []
    for item in special.split(", "):
        cls = "pdg-badge pdg-special" + (" pdg-finalizer" if item == "Finalizer" else "")
        items.append(f'<span class="{cls}">{_e(item)}</span>')
    return " ".join(items)


def threads_html(table: ThreadTable) -> str:
    """A ``ThreadTable`` (``clrthreads``) as HTML; threads with an exception are highlighted."""
    rows = []
    for t in table.threads:
        cls = "pdg-thread"
        cls += " pdg-has-exception" if t.exception_type else ""
        cls += " pdg-dead" if t.dbg_id is None else ""
        exc = ""
        if t.exception_type:
            exc = f'<span class="pdg-type">{_e(t.exception_type)}</span>'
            exc += f" <code>{_e(_hex(t.exception_address))}</code>"
            if t.nested:
                exc += ' <span class="pdg-note">(nested exceptions)</span>'
        cells = [
            "XXXX" if t.dbg_id is None else str(t.dbg_id),
            str(t.managed_id),
            f"{t.os_id:x}",
            f"{t.thread_obj:x}",
            f"{t.state:x}",
        ]
        rows.append(
            f'<tr class="{cls}">'
            + "".join(f'<td class="pdg-mono">{_e(c)}</td>' for c in cells)
            + f"<td>{_e(t.gc_mode)}</td><td>{_e(t.apartment)}</td>"
            + f'<td>{_special_html(t.special)}</td><td class="pdg-exception">{exc}</td></tr>'
        )
    body = f'<div class="pdg-head pdg-label">{_e(_thread_counts(table))}</div>'
    body += _table(_THREAD_HEADERS, rows, "pdg-threads")
    return _root("threads", body)


def threads_markdown(table: ThreadTable) -> str:
    """A ``ThreadTable`` as Markdown."""
    rows = []
    for t in table.threads:
        special = markdown_escape(t.special or "")
        if t.special and "Finalizer" in t.special.split(", "):
            special = f"**{special}**"
        exc = markdown_escape(_thread_exception(t))
        rows.append(
            [
                "XXXX" if t.dbg_id is None else str(t.dbg_id),
                str(t.managed_id),
                _code(f"{t.os_id:x}"),
                _code(f"{t.thread_obj:x}"),
                _code(f"{t.state:x}"),
                markdown_escape(t.gc_mode),
                markdown_escape(t.apartment),
                special,
                f"**{exc}**" if exc else "",
            ]
        )
    return f"{markdown_escape(_thread_counts(table))}\n\n{_md_table(_THREAD_HEADERS, rows)}\n"


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


def _details_html(summary: str, body: str, open_: bool = True) -> str:
    attr = " open" if open_ else ""
    return f"<details{attr}><summary>{_e(summary)}</summary>{body}</details>"


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


# ---------------------------------------------------------------------------------------------
# attaching the reprs

_Render = Callable[[Any], str]

_REPRS: Tuple[Tuple[str, _Render, _Render], ...] = (
    ("ManagedException", exception_html, exception_markdown),
    ("ManagedStack", stack_html, stack_markdown),
    ("ThreadTable", threads_html, threads_markdown),
    ("StopEvent", event_html, event_markdown),
    ("DumpRecord", dump_html, dump_markdown),
    ("CaptureRecord", capture_html, capture_markdown),
    ("SnapshotRecord", snapshot_html, snapshot_markdown),
)


def install_reprs(
    capture_record: Optional[type] = None, watch_result: Optional[type] = None
) -> Tuple[type, ...]:
    """Set ``_repr_html_`` and ``_repr_markdown_`` on the model classes, so Jupyter shows them rendered.

    ManagedException, ManagedStack, ThreadTable, StopEvent and DumpRecord come from
    ``pydbgauto.models`` (and CaptureRecord too, once it exists there); ``capture_record`` and
    ``watch_result`` name those classes explicitly where they live elsewhere. Calling it again is
    harmless. Returns the classes that got the methods.
    """
    targets: List[Tuple[type, _Render, _Render]] = []
    for name, to_html, to_md in _REPRS:
        cls = getattr(models, name, None)
        if isinstance(cls, type):
            targets.append((cls, to_html, to_md))
    if capture_record is not None:
        targets.append((capture_record, capture_html, capture_markdown))
    if watch_result is not None:
        targets.append((watch_result, watch_result_html, watch_result_markdown))
    for cls, to_html, to_md in targets:
        # plain functions become methods when set on the class (attrs' frozen only guards instances)
        setattr(cls, "_repr_html_", to_html)
        setattr(cls, "_repr_markdown_", to_md)
    return tuple(cls for cls, _, _ in targets)
