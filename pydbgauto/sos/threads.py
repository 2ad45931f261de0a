"""``!threads`` / ``clrthreads`` text -> :class:`ThreadTable`. Pure.

Layout (strike.cpp PrintThreadsFromThreadStore): five ``Label: <decimal>`` counters and
``Hosted Runtime: no``, a two-line column header, then one row per thread::

    DBG ID OSID ThreadOBJ State GCMode AllocContext Domain LockCount Apt [Fiber] Exception

Columns are whitespace-separated single tokens except the last, which holds any of
``(Finalizer) (GC) (Threadpool Worker) (Threadpool Completion Port)``, then
``<Type> <addr>`` (Framework 2.0: ``<Type> (<addr>)``) and `` (nested exceptions)``.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from pydbgauto.errors import ParseError
from pydbgauto.models import ManagedThread, ThreadTable
from pydbgauto.sos.common import HEX, clean_lines, parse_hex, raise_if_fatal

_COUNTERS: Dict[str, str] = {
    "ThreadCount": "thread_count",
    "UnstartedThread": "unstarted",
    "BackgroundThread": "background",
    "PendingThread": "pending",
    "DeadThread": "dead",
}
_COUNTER = re.compile(r"^\s*(ThreadCount|UnstartedThread|BackgroundThread|PendingThread|DeadThread):\s*(\d+)")
_HOSTED = re.compile(r"^\s*Hosted Runtime:\s*(.*?)\s*$")
_ROW = re.compile(
    r"^\s*(?P<dbg>\d+|XXXX|<<<<)\s+(?P<id>\d+)\s+(?P<osid>[0-9A-Fa-f]+)\s+(?P<obj>" + HEX + r")"
    r"\s+(?P<state>[0-9A-Fa-f]+)\s+(?P<gc>\S+)\s+(?P<alloc>" + HEX + r":" + HEX + r")"
    r"\s+(?P<domain>\S+)\s+(?P<lock>-?\d+)\s+(?P<apt>\S+)(?P<rest>.*)$"
)
_SPECIAL = re.compile(r"^\s*\(([^()]+)\)")
_SPECIAL_NAMES = ("Finalizer", "GC", "Threadpool Worker", "Threadpool Completion Port")
_EXCEPTION = re.compile(
    r"^\s*(?P<type>.+?)\s+\(?(?P<addr>" + HEX + r")\)?\s*(?P<nested>\(nested exceptions\))?\s*$"
)


def parse_threads(text: str) -> ThreadTable:
    """Parse a ``clrthreads`` reply. SosError when SOS could not run, ParseError when the text
    has neither the counters nor a thread row."""
    lines = clean_lines(text)
    raise_if_fatal(lines, "clrthreads")
    counters: Dict[str, int] = {}
    hosted: Optional[str] = None
    threads: List[ManagedThread] = []
    for line in lines:
        m = _COUNTER.match(line)
        if m:
            counters[_COUNTERS[m.group(1)]] = int(m.group(2))
            continue
        h = _HOSTED.match(line)
        if h:
            hosted = h.group(1)
            continue
        row = _ROW.match(line)
        if row:
            threads.append(_thread(row, fiber=hosted is not None and hosted.startswith("yes")))
    if not counters and not threads:
        raise ParseError(f"not a clrthreads reply (no ThreadCount line, no thread row): {text[:200]!r}")
    return ThreadTable(
        thread_count=counters.get("thread_count"),
        unstarted=counters.get("unstarted"),
        background=counters.get("background"),
        pending=counters.get("pending"),
        dead=counters.get("dead"),
        hosted_runtime=hosted,
        threads=tuple(threads),
        raw=text,
    )


def _thread(row: "re.Match[str]", fiber: bool) -> ManagedThread:
    rest = row.group("rest")
    if fiber:
        # A task-hosted runtime adds a Fiber column before Exception.
        rest = rest.strip().split(" ", 1)[1] if rest.strip() else ""
    specials, exc_type, exc_addr, nested = _last_column(rest)
    dbg = row.group("dbg")
    return ManagedThread(
        dbg_id=int(dbg) if dbg.isdigit() else None,
        managed_id=int(row.group("id")),
        os_id=int(row.group("osid"), 16),
        thread_obj=parse_hex(row.group("obj")),
        state=int(row.group("state"), 16),
        gc_mode=row.group("gc"),
        apartment=row.group("apt"),
        special=", ".join(specials) if specials else None,
        exception_type=exc_type,
        exception_address=exc_addr,
        nested=nested,
    )


def _last_column(rest: str) -> Tuple[List[str], Optional[str], Optional[int], bool]:
    specials: List[str] = []
    while True:
        m = _SPECIAL.match(rest)
        if not m or m.group(1) not in _SPECIAL_NAMES:
            break
        specials.append(m.group(1))
        rest = rest[m.end() :]
    rest = rest.strip()
    if not rest:
        return specials, None, None, False
    e = _EXCEPTION.match(rest)
    if e is None:
        return specials, rest, None, False  # a type without a readable address
    return specials, e.group("type"), parse_hex(e.group("addr")), e.group("nested") is not None
