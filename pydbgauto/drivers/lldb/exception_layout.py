"""System.Exception's field offsets, kept per runtime across sessions (runs inside lldb's Python).

Why: the stop cache (its pe key) and the field reader learn where an exception object holds
``_message``, ``_HResult`` and the rest from one SOS ``dumpobj`` at a session's first stop: 15-30 ms of
that stop (docs/linux.md, "where the first stop after an attach goes"). The offsets are a fact of the
runtime: the class loader in libcoreclr.so lays System.Exception out from System.Private.CoreLib.dll's
metadata. So they are kept with both files (scan_cache.py: each file's real path, size, inode and
modification time; CoreLib is the one beside libcoreclr.so, where the runtime loads it from), and a
later session of that runtime reads them instead of asking. A runtime without both files there (a
single-file app carries its runtime inside the host) asks ``dumpobj`` as before.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from pydbgauto.drivers.lldb import scan_cache

FIELDS = (
    "_message",
    "_HResult",
    "_innerException",
    "_stackTrace",
    "_stackTraceString",
    "_remoteStackTraceString",
)
CORELIB = "System.Private.CoreLib.dll"


def kept(agent: Any) -> Optional[Dict[str, int]]:
    """Every field's offset, as an earlier session of this runtime learnt it; None if one is missing."""
    where = _runtime(agent)
    if where is None:
        return None
    offsets = {name: scan_cache.known(where[0], f"{where[1]} System.Exception.{name}") for name in FIELDS}
    if any(offset is None for offset in offsets.values()):
        return None
    return {name: int(offset) for name, offset in offsets.items() if offset is not None}


def keep(agent: Any, rows: Iterable[Tuple[str, Optional[int]]]) -> None:
    """Keep the offsets of SOS's dumpobj rows (name, offset): only a whole set, each name once (a derived
    type's own field of the same name would make the row ambiguous: then nothing is kept)."""
    where = _runtime(agent)
    if where is None:
        return
    found: Dict[str, List[int]] = {}
    for name, offset in rows:
        if name in FIELDS and offset is not None:
            found.setdefault(name, []).append(offset)
    if any(len(found.get(name, ())) != 1 for name in FIELDS):
        return
    for name in FIELDS:
        scan_cache.keep(where[0], f"{where[1]} System.Exception.{name}", found[name][0])


def _runtime(agent: Any) -> Optional[tuple]:
    """(libcoreclr.so's path, CoreLib's identity) of the target's runtime, or None."""
    module = agent._runtime_module()
    path = module.GetFileSpec().fullpath if module is not None else None
    if not path:
        return None
    corelib = os.path.join(os.path.dirname(path), CORELIB)
    try:
        st = os.stat(corelib)
    except OSError:
        return None
    return path, f"{os.path.realpath(corelib)}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}"
