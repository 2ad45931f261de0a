"""cdb's reply to ``.dump`` -> :class:`DumpResult`. Pure.

``Creating <path> - mini user dump`` is printed *before* the dump can fail, so success needs
``Dump successfully written``; a failure says ``Dump creation failed, Win32 error 0n5`` and
quotes the system message on the next line (research/cdb-protocol.md 8). The caller must
still check that the file exists and is not empty.
"""

from __future__ import annotations

import re
from typing import List, Optional

from pydbgauto.errors import ParseError
from pydbgauto.models import DumpResult
from pydbgauto.sos.common import clean_lines

_CREATING = re.compile(r"^\s*Creating\s+(?P<path>.+?)\s+-\s+[\w ]*dump\s*$")
_SUCCESS = re.compile(r"^\s*Dump successfully written\b")
# Failure lines cdb prints for .dump (the first match wins, the next quoted line adds detail).
_FAILURES = (
    re.compile(r"^\s*Dump creation failed.*$"),
    re.compile(r"^\s*Unable to create (?:dump )?file.*$"),
    re.compile(r"^\s*\^ .*error in '\.dump.*$"),
    re.compile(r"^\s*Usage: \.dump.*$"),
    re.compile(r"^\s*(?:No|Invalid) .*\b(?:process|target|debuggee)s?\b.*$", re.IGNORECASE),
)


def parse_dump_result(text: str) -> DumpResult:
    """Parse a ``.dump`` reply. ParseError when the text says neither success nor a known failure."""
    lines = [line for line in clean_lines(text) if line.strip()]
    path: Optional[str] = None
    success = False
    error: Optional[str] = None
    for i, line in enumerate(lines):
        m = _CREATING.match(line)
        if m:
            path = m.group("path").strip().strip('"')
            continue
        if _SUCCESS.match(line):
            success = True
            continue
        if error is None:
            error = _failure(line, lines[i + 1 :])
    if error is not None:
        return DumpResult(path=path, success=False, error=error)
    if success:
        return DumpResult(path=path, success=True)
    if path is not None:
        return DumpResult(
            path=path, success=False, error="no 'Dump successfully written' line (reply cut short?)"
        )
    raise ParseError(f"not a .dump reply: {text[:200]!r}")


def _failure(line: str, following: List[str]) -> Optional[str]:
    for pattern in _FAILURES:
        if pattern.match(line):
            detail = following[0].strip() if following and following[0].strip().startswith('"') else ""
            return f"{line.strip()} {detail}".strip()
    return None
