"""The agent's memory of SOS's answers at earlier stops: ``clrstack`` and ``pe`` texts, served again only
at a stop that is provably the same place with the same kind of exception (runs inside lldb's Python).

Why: at each stop SOS flushes its caches and lldb its memory cache, so SOS's first command after a stop
re-reads System.Private.CoreLib's metadata from the target (~3 MB through lldb-server) and scans
libcoreclr for its version string: ~45 ms of the ~60 ms a stop's ``clrstack`` + ``pe`` cost here. A
service that throws at one place over and over gets the same two texts each time, but for the object's
address.

What must hold for a text to be served again (anything else runs SOS, and its answer is remembered):

- ``clrstack``: the same OS thread, and every frame of lldb's unwinding of it (pc and sp, down to the
  thread's first frame) as before; the 16 bytes at each explicit runtime Frame the text names
  (``[InlinedCallFrame: <addr>]``: its vtable and link) and the code bytes around each IP it lists
  are unchanged (code freed and reused for another method would differ there).
  A text is also found by the thread's frame-pointer chain (frame_chain.py) where that chain pins
  every managed frame of the text: no unwinding by lldb then (it costs ~0.15 ms a frame).
- ``pe``: a ``clrstack`` hit at this stop (so the same throw site, call chain and nesting), and a fresh
  exception: no inner exception, stack trace, stack trace string or remote stack trace yet, the same
  MethodTable, HResult and message (the string's characters). The text is the remembered one with this
  object's address. The field offsets come from one ``dumpobj`` of the first exception remembered
  (or from an earlier session of the same runtime: exception_layout.py).

One thing this cannot see: two different dynamic methods (LCG) whose code is byte-identical at the same
reused address, on an identical stack: clrstack would name the earlier one.
"""

from __future__ import annotations

import collections
import re
import struct
from typing import Any, Dict, List, Optional, Tuple

from pydbgauto.drivers.lldb import exception_layout
from pydbgauto.drivers.lldb.frame_chain import ChainKey, pins

MAX_ENTRIES = 256  # per kind; the oldest goes first
CODE_BYTES = (8, 8)  # bytes before and after an IP compared at a hit
FRAME_BYTES = 16  # an explicit Frame's vtable and link
FRESH_FIELDS = ("_innerException", "_stackTrace", "_stackTraceString", "_remoteStackTraceString")
KEY_FIELDS = FRESH_FIELDS + ("_message", "_HResult")
MAX_MESSAGE_CHARS = 4096
SHORT_MESSAGE_CHARS = 64  # read with the string's head

_EXPLICIT_FRAME = re.compile(r"\[\w+: ([0-9a-fA-F]{8,16})\]")
_FRAME_LINE = re.compile(r"^([0-9A-Fa-f]{16}) ([0-9A-Fa-f]{16}) ")
_PE_ADDRESS = re.compile(r"^(Exception object:\s+)([0-9a-fA-F]+)", re.MULTILINE)
_DUMPOBJ_FIELD = re.compile(
    r"^\s*[0-9a-fA-F]+\s+[0-9a-fA-F]+\s+([0-9a-fA-F]+)\s.*\sinstance\s+\S+\s+(\w+)\s*$"
)

StackKey = Tuple[int, Tuple[Tuple[int, int], ...]]


class StopCache:
    def __init__(self) -> None:
        self.stacks: "collections.OrderedDict[StackKey, Tuple[str, List[Tuple[int, bytes]]]]" = (
            collections.OrderedDict()
        )
        self.chains: "collections.OrderedDict[ChainKey, StackKey]" = collections.OrderedDict()
        self.pes: "collections.OrderedDict[Tuple[Any, ...], Tuple[str, int]]" = collections.OrderedDict()
        self.offsets: Optional[Dict[str, int]] = None  # System.Exception's fields, from one dumpobj
        self.tried_kept = False
        self.stop_key: Optional[StackKey] = None  # the clrstack key of the current stop, on a hit
        self.stats = {"stack_hits": 0, "chain_hits": 0, "stack_misses": 0, "pe_hits": 0, "pe_misses": 0}

    # ----- clrstack ------------------------------------------------------------------------------------

    def by_chain(self, agent: Any, chain: ChainKey, limit: int) -> Optional[str]:
        """The remembered ``clrstack`` of a stop whose frame-pointer chain is ``chain``, if one pins it
        (frame_chain.py) and lldb unwound at most ``limit`` frames there: lldb's unwinding is not needed
        then. None: ask ``clrstack``."""
        self.stop_key = None
        key = self.chains.get(chain)
        cached = self.stacks.get(key) if key is not None else None
        if key is None or cached is None or len(key[1]) > limit or not _unchanged(agent, cached[1]):
            return None
        self.chains.move_to_end(chain)
        self.stacks.move_to_end(key)
        self.stats["stack_hits"] += 1
        self.stats["chain_hits"] += 1
        self.stop_key = key
        return cached[0]

    def clrstack(self, agent: Any, key: StackKey, chain: Optional[ChainKey] = None) -> str:
        """``clrstack`` of the selected thread, whose unwinding ``key`` is (tid, ((pc, sp), ...)) and
        frame-pointer chain ``chain`` (remembered as a key of the text where it pins the text)."""
        self.stop_key = None
        cached = self.stacks.get(key)
        if cached is not None and _unchanged(agent, cached[1]):
            self.stacks.move_to_end(key)
            self.stats["stack_hits"] += 1
            self.stop_key = key
            text = cached[0]
        else:
            self.stats["stack_misses"] += 1
            text = agent.hc("clrstack")
            checks = _stack_checks(agent, text)
            if checks is None:
                return text
            _put(self.stacks, key, (text, checks))
            self.stop_key = key
        if chain is not None and pins(chain, text):
            _put(self.chains, chain, key)
        return text

    # ----- pe ------------------------------------------------------------------------------------------

    def pe(self, agent: Any, address: int) -> str:
        """``pe <address>`` at the current stop (after ``clrstack``)."""
        if self.offsets is None and not self.tried_kept:  # learnt by an earlier session of this runtime
            self.tried_kept = True
            self.offsets = exception_layout.kept(agent)
        key = self._pe_key(agent, address) if self.stop_key is not None else None
        cached = self.pes.get(key) if key is not None else None
        if key is not None and cached is not None:
            self.pes.move_to_end(key)
            self.stats["pe_hits"] += 1
            text, width = cached
            return _PE_ADDRESS.sub(lambda m: m.group(1) + f"{address:0{width}x}", text, count=1)
        self.stats["pe_misses"] += 1
        text = agent.hc(f"pe 0x{address:x}")
        if self.stop_key is not None and self.offsets is None:
            rows = _field_rows(agent.hc(f"dumpobj 0x{address:x}"))
            self.offsets = _exception_offsets(rows)
            if self.offsets is not None:
                exception_layout.keep(agent, rows)
            key = self._pe_key(agent, address)
        shown = _PE_ADDRESS.search(text)
        if key is not None and shown is not None and int(shown.group(2), 16) == address:
            _put(self.pes, key, (text, len(shown.group(2))))
        return text

    def _pe_key(self, agent: Any, address: int) -> Optional[Tuple[Any, ...]]:
        """What the pe text of a fresh exception depends on, or None when it is not fresh (or unreadable)."""
        offsets = self.offsets
        if offsets is None:
            return None
        try:
            # one read of the object's head holds every field the key needs
            head = agent._read(address, max(offsets.values()) + 8)
            if any(struct.unpack_from("<Q", head, offsets[name])[0] for name in FRESH_FIELDS):
                return None
            method_table = struct.unpack_from("<Q", head, 0)[0]
            hresult = struct.unpack_from("<i", head, offsets["_HResult"])[0]
            message = _string_bytes(agent, struct.unpack_from("<Q", head, offsets["_message"])[0])
        except Exception:  # noqa: BLE001 - an unreadable object goes to SOS
            return None
        if message is False:
            return None
        return (self.stop_key, method_table, hresult, message)


def _put(table: "collections.OrderedDict[Any, Any]", key: Any, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_ENTRIES:
        table.popitem(last=False)


def _stack_checks(agent: Any, text: str) -> Optional[List[Tuple[int, bytes]]]:
    """(address, bytes) to compare at a later hit: each explicit Frame's head, the code around each IP.
    None when the text is not a plain managed stack (an error, no frames) or a read fails."""
    spots: List[Tuple[int, int]] = []
    for line in text.splitlines():
        for frame in _EXPLICIT_FRAME.findall(line):
            spots.append((int(frame, 16), FRAME_BYTES))
        m = _FRAME_LINE.match(line)
        if m:
            ip = int(m.group(2), 16)
            if ip:
                spots.append((ip - CODE_BYTES[0], sum(CODE_BYTES)))
    if not spots:
        return None
    try:
        return [(at, agent._read(at, size)) for at, size in sorted(set(spots))]
    except Exception:  # noqa: BLE001 - a stack whose bytes cannot be read is not remembered
        return None


def _unchanged(agent: Any, checks: List[Tuple[int, bytes]]) -> bool:
    try:
        return all(agent._read(at, len(data)) == data for at, data in checks)
    except Exception:  # noqa: BLE001
        return False


def _field_rows(dumpobj: str) -> List[Tuple[str, int]]:
    """(name, offset) of the instance fields in dumpobj's table, in its order."""
    rows = []
    for line in dumpobj.splitlines():
        m = _DUMPOBJ_FIELD.match(line)
        if m:
            rows.append((m.group(2), int(m.group(1), 16)))
    return rows


def _exception_offsets(rows: List[Tuple[str, int]]) -> Optional[Dict[str, int]]:
    offsets = {name: offset for name, offset in rows if name in KEY_FIELDS}
    return offsets if all(name in offsets for name in KEY_FIELDS) else None


def _string_bytes(agent: Any, address: int) -> Any:
    """A System.String's characters (UTF-16 bytes), None for null, False when it cannot be compared."""
    if address == 0:
        return None
    try:  # MethodTable, length and a short message in one read
        head = agent._read(address, 12 + 2 * SHORT_MESSAGE_CHARS)
    except Exception:  # noqa: BLE001 - a string near the end of a mapping: its head alone
        head = agent._read(address, 12)
    method_table, length = struct.unpack_from("<Qi", head, 0)
    if not 0 <= length <= MAX_MESSAGE_CHARS:
        return False
    if 12 + 2 * length <= len(head):
        return (method_table, head[12 : 12 + 2 * length])
    return (method_table, agent._read(address + 12, 2 * length))
