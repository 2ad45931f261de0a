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

- :func:`analysis_html` -- what ``pydbgauto.analyze`` found in a dump (also ``analysis_text``, the
  plain text ``pydbgauto analyze`` prints, and ``analysis_page``, a whole HTML document).

:func:`install_reprs` attaches ``_repr_html_`` and ``_repr_markdown_`` to the model classes.

The modules: ``common`` (stylesheet, escaping, frame kinds), ``objects`` (exception, stack, thread
table), ``events`` (stop event, dump record, capture record), ``results`` (watch result, snapshot,
progress), ``analysis`` (a dump analysis).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

from pydbgauto import models
from pydbgauto.display.analysis import analysis_html, analysis_markdown, analysis_page, analysis_text
from pydbgauto.display.analysis import thread_exception_text
from pydbgauto.display.common import FRAMEWORK_PREFIXES, THROW_SITE_LABEL, is_framework_frame, markdown_escape
from pydbgauto.display.common import _details_html, _e, _root, _table  # noqa: F401 (multi, surveying)
from pydbgauto.display.events import (
    capture_html,
    capture_markdown,
    dump_html,
    dump_markdown,
    event_html,
    event_markdown,
)
from pydbgauto.display.objects import (
    exception_html,
    exception_markdown,
    stack_html,
    stack_markdown,
    threads_html,
    threads_markdown,
)
from pydbgauto.display.results import (
    progress_html,
    snapshot_html,
    snapshot_markdown,
    watch_result_html,
    watch_result_markdown,
)

__all__ = [
    "FRAMEWORK_PREFIXES",
    "THROW_SITE_LABEL",
    "analysis_html",
    "analysis_markdown",
    "analysis_page",
    "analysis_text",
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
    "thread_exception_text",
    "threads_html",
    "threads_markdown",
    "watch_result_html",
    "watch_result_markdown",
]

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

    ManagedException, ManagedStack, ThreadTable, StopEvent, DumpRecord, CaptureRecord and
    SnapshotRecord come from ``pydbgauto.models``; ``capture_record`` and ``watch_result`` name
    classes of those shapes that live elsewhere (a WatchResult, a test's). Calling it again is
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
