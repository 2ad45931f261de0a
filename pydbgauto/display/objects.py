"""ManagedException, ManagedStack and ThreadTable as HTML and Markdown. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence

from pydbgauto import models

from pydbgauto.display.common import (
    THROW_SITE_LABEL,
    _code,
    _col,
    _details_html,
    _e,
    _frame_classes,
    _hex,
    _hresult,
    _marker_html,
    _md_table,
    _root,
    _site_html,
    _site_md,
    _source,
    _table,
    markdown_escape,
)

if TYPE_CHECKING:  # the session models are only needed for the annotations
    from pydbgauto.models import (
        ExceptionFrame,
        ManagedException,
        ManagedStack,
        StackFrame,
        ThreadTable,
    )


# ---------------------------------------------------------------------------------------------
# ManagedException


def _xframe_text(frame: ExceptionFrame) -> str:
    where = f"{frame.module}!" if frame.module else ""
    off = f"+0x{frame.offset:x}" if frame.offset is not None else ""
    return f"{where}{frame.method}{off}"


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
