"""What a scan of the runtime's file found, kept across sessions (runs inside lldb's Python).

Why: arming .NET 8 scans libcoreclr.so twice (qcalls.py: the QCall table for .NET 9+'s
AppendExceptionStackFrame, then the stress-log reference for RaiseTheExceptionInternalOnly): ~0.13 s of
every attach, for an answer that depends only on the file (and legacy_faults.py's expressions that ask for
the runtime's signal handlers, ~0.1 s: kept when found). So the answer is kept per file, under
``$XDG_CACHE_HOME/pydbgauto`` (else ``~/.cache/pydbgauto``), keyed by the file's real path, size, inode and
modification time: a replaced or updated runtime is scanned again. What is kept is a file address the
caller checks as before (an executable section, a function lldb knows). The folder is the user's own
(0700, the file 0600, written whole and renamed into place); nothing works differently without it: an
unreadable or unwritable cache only means the scan runs. ``PYDBGAUTO_NO_SCAN_CACHE`` turns it off.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Callable, Dict, Optional

MAX_ENTRIES = 64  # runtimes x scans; the oldest go first
FILE_NAME = "runtime-scans.json"


def folder() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pydbgauto")


def remembered(
    path: str, what: str, scan: Callable[[], Optional[int]], keep_none: bool = True
) -> Optional[int]:
    """``scan()``'s answer for the file at ``path``, from the cache when the file is unchanged.
    ``keep_none=False``: a None (nothing found) is not kept, for an answer that depends on the process
    too (a file address found holds for every process of the file; not finding it may not)."""
    key = _key(path, what)
    if key is None:
        return scan()
    entries = _load()
    if key in entries:
        value = entries[key]
        return value if isinstance(value, int) else None
    found = scan()
    if found is not None or keep_none:
        _put(entries, key, found)
    return found


def known(path: str, what: str) -> Optional[int]:
    """What was kept for the file at ``path`` (unchanged since) under ``what``; None if nothing was."""
    key = _key(path, what)
    value = _load().get(key) if key is not None else None
    return value if isinstance(value, int) else None


def keep(path: str, what: str, value: int) -> None:
    """Keep ``value`` for the file at ``path`` as it is now: a fact of the file that a session proved
    (the Thread object's slots, checked against SOS at several stops)."""
    key = _key(path, what)
    if key is not None:
        _put(_load(), key, value)


def _key(path: str, what: str) -> Optional[str]:
    if os.environ.get("PYDBGAUTO_NO_SCAN_CACHE"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.realpath(path)}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{what}"


def _put(entries: Dict[str, Optional[int]], key: str, value: Optional[int]) -> None:
    entries.pop(key, None)
    entries[key] = value
    _store(dict(list(entries.items())[-MAX_ENTRIES:]))


def _load() -> Dict[str, Optional[int]]:
    try:
        with open(os.path.join(folder(), FILE_NAME)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(entries: Dict[str, Optional[int]]) -> None:
    where = folder()
    try:
        os.makedirs(where, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=where, prefix=".scans-")  # 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entries, f)
            os.replace(temporary, os.path.join(where, FILE_NAME))
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass  # the next attach scans again
