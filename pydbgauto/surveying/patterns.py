"""Message patterns: numbers, hex and GUIDs folded out of exception messages, and the regex that matches
every message of a pattern. Pure: text in, text out.

Folded: GUIDs, hex numbers (``0x1f``, and runs of 8+ hex digits with a digit in them) and decimal numbers
become ``<guid>``, ``<hex>`` and ``<n>`` (:func:`fold_message`); :func:`message_regex` gives the anchored
``--message`` regex of a message's pattern.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_HEX_PREFIXED = r"0[xX][0-9a-fA-F]+"
_HEX_RUN = r"(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}"
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_TOKEN = re.compile(
    rf"(?P<guid>\b{_GUID}\b)"
    rf"|(?P<hex>\b{_HEX_PREFIXED}\b|\b{_HEX_RUN}\b)"
    rf"|(?P<n>(?<![A-Za-z_0-9]){_NUMBER}(?![A-Za-z_0-9]))"
)
_PLACEHOLDER_REGEX = {"guid": _GUID, "hex": rf"(?:{_HEX_PREFIXED}|[0-9a-fA-F]{{8,}})", "n": _NUMBER}


_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def escape(text: str) -> str:
    """``re.escape`` for readable command lines: only the characters special in a regex."""
    return _SPECIAL.sub(r"\\\1", text)


def _tokens(message: str) -> List[Tuple[str, str]]:
    """``message`` as (kind, text) pieces: kind "" for literal text, else "guid", "hex" or "n"."""
    out: List[Tuple[str, str]] = []
    at = 0
    for m in _TOKEN.finditer(message):
        if m.start() > at:
            out.append(("", message[at : m.start()]))
        kind = m.lastgroup or "n"
        out.append((kind, m.group()))
        at = m.end()
    if at < len(message):
        out.append(("", message[at:]))
    return out


def fold_message(message: Optional[str]) -> Optional[str]:
    """``message`` with GUIDs, hex numbers and decimal numbers replaced by ``<guid>``, ``<hex>``, ``<n>``.

    ``"Order 42 was rejected"`` -> ``"Order <n> was rejected"``; digits inside words (``Int32``, ``utf8``)
    stay. None (no message) stays None.
    """
    if message is None:
        return None
    return "".join(text if kind == "" else f"<{kind}>" for kind, text in _tokens(message))


def message_regex(message: Optional[str]) -> Optional[str]:
    """An anchored regex (for ``--message``) matching ``message`` and every message of its pattern."""
    if message is None:
        return None
    parts = [escape(text) if kind == "" else _PLACEHOLDER_REGEX[kind] for kind, text in _tokens(message)]
    return "^" + "".join(parts) + "$"
