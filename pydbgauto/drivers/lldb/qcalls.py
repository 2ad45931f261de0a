"""Find a native runtime function by its QCall name in a stripped ``libcoreclr.so``.

libcoreclr exports only its hosting API, but it keeps a table of the functions managed code may call
(``QCall``s: ``{"AppendExceptionStackFrame", &AppendExceptionStackFrame}, ...``) so that CoreLib can bind
them by name. In the shared object that table is a run of ``{const char*, void*}`` pairs, each pointer
filled at load time by an ``R_X86_64_RELATIVE`` relocation whose addend is the file address it points to.
So: find the name's bytes in a loaded segment, find the relocation whose addend is that address, and the
relocation of the next slot holds the function's file address. Nothing is guessed: a name not in the
table gives None.

``find_throw_funnel_reference`` finds .NET 8's RaiseTheExceptionInternalOnly the same way, by the one
instruction that loads the address of its stress-log line (docs/linux-fast-filter.md).

Pure functions over the file's bytes (``find_qcall`` only reads the file). x86-64 ELF only.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple

PT_LOAD, PT_DYNAMIC = 1, 2
PF_X = 1
DT_RELA, DT_RELASZ = 7, 8
R_X86_64_RELATIVE = 8
ELF_MAGIC = b"\x7fELF"


class ElfError(ValueError):
    """The bytes are not an x86-64 ELF shared object this module can read."""


def _segments(
    data: bytes, executable_only: bool = False
) -> Tuple[List[Tuple[int, int, int]], Optional[Tuple[int, int]]]:
    """(file offset, vaddr, file size) of each PT_LOAD (``executable_only``: of those with PF_X), and
    (offset, size) of PT_DYNAMIC."""
    if data[:4] != ELF_MAGIC or data[4] != 2 or data[5] != 1:
        raise ElfError("not a little-endian 64-bit ELF file")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: List[Tuple[int, int, int]] = []
    dynamic: Optional[Tuple[int, int]] = None
    for i in range(phnum):
        p_type, flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == PT_LOAD and (flags & PF_X or not executable_only):
            loads.append((p_offset, p_vaddr, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    return loads, dynamic


def _relative_relocations(data: bytes) -> Dict[int, int]:
    """slot file address -> addend, for every R_X86_64_RELATIVE relocation of the object."""
    loads, dynamic = _segments(data)
    if dynamic is None:
        raise ElfError("no dynamic section: not a shared object")
    rela = relasz = None
    offset, size = dynamic
    for at in range(offset, offset + size, 16):
        tag, value = struct.unpack_from("<qQ", data, at)
        if tag == DT_RELA:
            rela = value
        elif tag == DT_RELASZ:
            relasz = value
    if rela is None or relasz is None:
        return {}
    start = _vaddr_to_offset(loads, rela)
    if start is None:
        raise ElfError(f"the relocation table at {rela:#x} is in no loaded segment")
    relocations: Dict[int, int] = {}
    for at in range(start, start + relasz, 24):
        r_offset, r_info, r_addend = struct.unpack_from("<QQq", data, at)
        if r_info & 0xFFFFFFFF == R_X86_64_RELATIVE:
            relocations[r_offset] = r_addend
    return relocations


def _vaddr_to_offset(loads: List[Tuple[int, int, int]], vaddr: int) -> Optional[int]:
    for p_offset, p_vaddr, p_filesz in loads:
        if p_vaddr <= vaddr < p_vaddr + p_filesz:
            return p_offset + vaddr - p_vaddr
    return None


def _offset_to_vaddr(loads: List[Tuple[int, int, int]], offset: int) -> Optional[int]:
    for p_offset, p_vaddr, p_filesz in loads:
        if p_offset <= offset < p_offset + p_filesz:
            return p_vaddr + offset - p_offset
    return None


def slots_naming(data: bytes, name: str) -> Tuple[List[int], Dict[int, int]]:
    """The pointer slots whose relocation points at the whole string ``name`` in a loaded segment (a
    runtime table's name field), and every relative relocation of ``data`` (slot -> file address)."""
    loads, _ = _segments(data)
    relocations = _relative_relocations(data)
    slots_by_target: Dict[int, List[int]] = {}
    for slot, target in relocations.items():
        slots_by_target.setdefault(target, []).append(slot)
    needle = name.encode("ascii") + b"\0"
    slots: List[int] = []
    at = data.find(needle)
    while at >= 0:
        whole_name = at == 0 or data[at - 1] == 0  # not the tail of a longer name
        string_address = _offset_to_vaddr(loads, at) if whole_name else None
        if string_address is not None:
            slots.extend(slots_by_target.get(string_address, []))
        at = data.find(needle, at + 1)
    return slots, relocations


def file_offset(data: bytes, vaddr: int) -> Optional[int]:
    """Where the file address ``vaddr`` of a loaded segment's bytes lies in ``data`` (None: not in one)."""
    return _vaddr_to_offset(_segments(data)[0], vaddr)


def qcall_address(data: bytes, name: str) -> Optional[int]:
    """The file address of the QCall ``name`` in the shared object ``data``, or None if absent."""
    slots, relocations = slots_naming(data, name)
    found = {relocations[slot + 8] for slot in slots if slot + 8 in relocations}
    return found.pop() if len(found) == 1 else None  # two different functions: do not guess


def find_qcall(path: str, name: str) -> Optional[int]:
    """``qcall_address`` of the file at ``path``."""
    with open(path, "rb") as f:
        return qcall_address(f.read(), name)


# .NET 8's RaiseTheExceptionInternalOnly (every managed throw, rethrow and runtime-raised exception) logs
# this stress-log line; the one instruction that loads its address lies in that function.
THROW_LOG_FORMAT = b"******* MANAGED EXCEPTION THROWN: Object thrown: %p MT %pT rethrow %d\n\0"
_LEA_RIP_MODRM = frozenset(b"\x05\x0d\x15\x1d\x25\x2d\x35\x3d")  # mod 00, rm 101: [rip+disp32]


def string_references(data: bytes, text: bytes) -> List[int]:
    """File addresses of every ``lea reg, [rip+disp32]`` in a loaded segment that loads the address of
    ``text`` (which must occur once, whole). Empty when the string is absent or not unique."""
    loads, _ = _segments(data)
    at = data.find(text)
    if at < 0 or data.find(text, at + 1) >= 0 or (at > 0 and data[at - 1] != 0):
        return []
    target = _offset_to_vaddr(loads, at)
    if target is None:
        return []
    found = []
    # bytes.find for the REX.W prefix and opcode (C speed), not a regex: this is part of every .NET 8 arming
    for p_offset, p_vaddr, p_filesz in _segments(data, executable_only=True)[0]:
        segment = data[p_offset : p_offset + p_filesz]
        for opcode in (b"\x48\x8d", b"\x4c\x8d"):  # lea r64 / lea r8-r15
            i = segment.find(opcode)
            while i >= 0:
                if (
                    i + 7 <= len(segment)
                    and segment[i + 2] in _LEA_RIP_MODRM
                    and p_vaddr + i + 7 + struct.unpack_from("<i", segment, i + 3)[0] == target
                ):
                    found.append(p_vaddr + i)
                i = segment.find(opcode, i + 1)
    return sorted(found)


def find_throw_funnel_reference(path: str) -> Optional[int]:
    """.NET 8: a file address inside RaiseTheExceptionInternalOnly (the caller finds the function's start
    from the unwind tables), or None when the reference is absent or not unique."""
    with open(path, "rb") as f:
        found = string_references(f.read(), THROW_LOG_FORMAT)
    return found[0] if len(found) == 1 else None
