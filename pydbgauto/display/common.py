"""What every renderer shares: the scoped stylesheet, escaping, small HTML and Markdown pieces, and
whether a frame is the framework's or the user's code. Pure."""

from __future__ import annotations

import html
from typing import Any, Optional, Sequence, Tuple

from pydbgauto.models import hex_text as _hex  # noqa: F401 (the display modules import it from here)


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


def _details_html(summary: str, body: str, open_: bool = True) -> str:
    attr = " open" if open_ else ""
    return f"<details{attr}><summary>{_e(summary)}</summary>{body}</details>"
