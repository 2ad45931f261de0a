"""``pydbgauto.analysis.DumpAnalysis`` (what ``analyze`` found in a dump) as text, HTML and Markdown. Pure.

Read by attribute name only (``path``, ``reader``, ``threads``, ``exceptions``, ``stacks``, ...).
"""

from __future__ import annotations

import html
import os
from typing import Any, List, Optional

from pydbgauto.display.common import _hex, markdown_escape
from pydbgauto.display.objects import (
    exception_html,
    exception_markdown,
    stack_html,
    stack_markdown,
    threads_html,
    threads_markdown,
)


def thread_exception_text(item: Any) -> str:
    """One ``ThreadException``: the thread, then its exception (or what the thread list says)."""
    head = f"thread {_hex(item.thread_id)}"
    if item.managed_id is not None:
        head += f" (managed {item.managed_id})"
    if item.exception is not None:
        return head + ": " + str(item.exception).replace("\n", "\n  ")
    text = f"{head}: {item.listed_type or 'unknown exception'} at {_hex(item.listed_address)}"
    return text + (f" (pe failed: {item.error})" if item.error else "")


def _summary(a: Any) -> List[str]:
    n = len(a.threads.threads) if a.threads else 0
    lines = [
        f"{a.path}: {n} managed threads, {len(a.exceptions)} with an exception (read by "
        f"{a.reader} in {a.seconds:.1f} s)"
    ]
    if a.matches_capture is not None:
        state = "matches" if a.matches_capture else "does NOT match"
        lines.append(f"{state} its capture record {a.capture_record}")
        lines += [f"  - {d}" for d in a.differences]
    lines += [f"warning: {w}" for w in a.warnings]
    return lines


def analysis_text(a: Any) -> str:
    """The analysis as plain text (``str(analysis)``, what ``pydbgauto analyze`` prints)."""
    lines = _summary(a)
    if a.exceptions:
        lines += ["", "Exceptions:"] + [f"  {e}".replace("\n", "\n  ") for e in a.exceptions]
    if a.threads is not None:
        lines += ["", "Threads:", "  " + str(a.threads).replace("\n", "\n  ")]
    if a.stacks:
        lines += ["", "Managed stacks:"] + ["  " + str(s).replace("\n", "\n  ") for s in a.stacks]
    return "\n".join(lines)


def _throw_site(stack: Any) -> Optional[Any]:
    """The topmost managed frame of a thread that holds an exception (marked in HTML)."""
    return next((f for f in stack.frames if f.kind == "managed"), None)


def analysis_html(a: Any) -> str:
    """The analysis as an HTML fragment (a notebook's view)."""
    parts = ['<div class="pydbgauto pdg-analysis">']
    head, rest = _summary(a)[0], _summary(a)[1:]
    parts.append(f"<div><b>{html.escape(head)}</b></div>")
    if rest:
        cls = "pdg-ok" if a.matches_capture else "pdg-bad"
        parts.append(
            "<ul>" + "".join(f'<li class="{cls}">{html.escape(r.strip())}</li>' for r in rest) + "</ul>"
        )
    for e in a.exceptions:
        parts.append(f"<h4>Exception on thread {html.escape(_hex(e.thread_id))}</h4>")
        if e.exception is not None:
            parts.append(exception_html(e.exception))
        else:
            parts.append(f"<div>{html.escape(str(e))}</div>")
    if a.threads is not None:
        parts.append("<h4>Threads</h4>" + threads_html(a.threads))
    if a.stacks:
        parts.append("<h4>Managed stacks</h4>")
        for s in a.stacks:
            holds = s.os_thread_id is not None and a.exception_on(s.os_thread_id)
            parts.append(stack_html(s, _throw_site(s) if holds else None))
    parts.append("</div>")
    return "".join(parts)


def analysis_markdown(a: Any) -> str:
    """The analysis as Markdown."""
    lines = [markdown_escape(line) for line in _summary(a)] + [""]
    for e in a.exceptions:
        lines.append(f"**Exception on thread {_hex(e.thread_id)}**\n")
        lines.append(exception_markdown(e.exception) if e.exception else markdown_escape(e))
    if a.threads is not None:
        lines += ["**Threads**", "", threads_markdown(a.threads)]
    for s in a.stacks:
        lines.append(stack_markdown(s))
    return "\n".join(lines).rstrip() + "\n"


def analysis_page(a: Any) -> str:
    """A whole HTML document (for ``pydbgauto analyze --html FILE``)."""
    title = html.escape(f"pydbgauto analyze {os.path.basename(a.path)}")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body>{analysis_html(a)}</body></html>\n"
    )
