"""The in-target type filter's machine code and decisions (pure: no lldb, no process).

The agent replaces the first whole instructions of the runtime's throw funnel with a jump to a stub in a
page of its own (docs/linux-fast-filter.md). The stub lets a call through without a stop when it is not
a throw (.NET 9+: not the first frame of a first pass) or when the exception's MethodTable is in the
negative cache (types known not to match); else it reaches the trap: an ``int3`` of its own, which lldb
reports as a SIGTRAP stop with the pc behind it (no lldb breakpoint, so no step over it at the resume:
docs/linux-fast-filter.md measured the difference). Then it runs the displaced instructions and jumps back
behind them.

Registers: only rax, r10, r11 and the flags, all dead at a function's entry (caller-saved, no argument).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

# The data page: the cache's entry count, its capacity, every throw seen, then the MethodTables, then
# for each of them the throws let through without a stop.
DATA_COUNT, DATA_CAPACITY, DATA_SEEN, DATA_ENTRIES = 0x0, 0x8, 0x10, 0x40
PAGE = 4096
CAPACITY = (PAGE - DATA_ENTRIES) // 16
DATA_PASSED = DATA_ENTRIES + 8 * CAPACITY
JUMP_SIZE = 14  # jmp [rip+0]; .quad target
INT3, NOP = 0xCC, 0x90


def absolute_jump(target: int) -> bytes:
    return b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", target)


@dataclass(frozen=True)
class Stub:
    code: bytes
    trap: int  # offset of the trap (an int3) in the code; a thread stopped there has its pc at go_on
    go_on: int  # offset of the first displaced instruction
    displaced: Tuple[Tuple[int, int], ...]  # (offset in the stub, offset in the original function)
    length: int  # bytes displaced from the function's entry

    def original_pc(self, offset: int) -> int:
        """Where a thread at ``offset`` in the stub goes on in the original function (offset from its
        entry), so that the stub can be removed under it: the filter part and the trap start the function
        again (its arguments are untouched there), a displaced instruction resumes at its original place,
        the final jump behind the displaced bytes."""
        if offset < self.go_on:
            return 0
        at = 0
        for stub_offset, original in self.displaced:
            if offset < stub_offset:
                break
            at = original
        if offset >= len(self.code) - JUMP_SIZE:
            return self.length
        return at


def build(
    entry: int, displaced: Sequence[bytes], data: int, object_in_handle: bool, first_frame_test: bool
) -> Stub:
    """The stub for a funnel at ``entry`` whose first instructions are ``displaced``.

    ``object_in_handle``: the exception object is ``*(rdi)`` (.NET 9+'s ObjectHandleOnStack), else ``rdi``.
    ``first_frame_test``: only calls with ``ecx & 1`` are throws (AppendExceptionStackFrame's flags).
    """
    code = bytearray()
    labels = {}
    fixups: List[Tuple[int, str]] = []

    def branch(opcode: int, label: str) -> None:  # a short conditional jump to a label
        code.extend([opcode, 0])
        fixups.append((len(code) - 1, label))

    if first_frame_test:
        code += b"\xf6\xc1\x01"  # test cl, 1
        branch(0x74, "go_on")  # jz
    code += b"\x49\xba" + struct.pack("<Q", data)  # mov r10, data
    code += b"\xf0\x49\xff\x42" + bytes([DATA_SEEN])  # lock inc qword [r10+SEEN]
    code += b"\x48\x8b\x07" if object_in_handle else b"\x48\x89\xf8"  # mov rax, [rdi] | mov rax, rdi
    code += b"\x48\x85\xc0"  # test rax, rax
    branch(0x74, "trap")
    code += b"\x48\x8b\x00"  # mov rax, [rax]: the MethodTable
    code += b"\x4d\x8b\x1a"  # mov r11, [r10]: the cache's count
    code += b"\x49\x83\xc2" + bytes([DATA_ENTRIES])  # add r10, ENTRIES
    labels["loop"] = len(code)
    code += b"\x4d\x85\xdb"  # test r11, r11
    branch(0x74, "trap")
    code += b"\x49\x3b\x02"  # cmp rax, [r10]
    branch(0x74, "hit")
    code += b"\x49\x83\xc2\x08"  # add r10, 8
    code += b"\x49\xff\xcb"  # dec r11
    code += b"\xeb" + bytes([(labels["loop"] - (len(code) + 2)) & 0xFF])  # jmp loop
    labels["hit"] = len(code)
    code += b"\xf0\x49\xff\x82" + struct.pack("<i", DATA_PASSED - DATA_ENTRIES)  # lock inc qword [r10+n]
    branch(0xEB, "go_on")  # jmp
    labels["trap"] = len(code)
    code.append(INT3)  # the trap; the guardian turns it into a nop should lldb die (a breakpoint site)
    labels["go_on"] = len(code)
    pairs: List[Tuple[int, int]] = []
    at = 0
    for instruction in displaced:
        pairs.append((len(code), at))
        code += instruction
        at += len(instruction)
    code += absolute_jump(entry + at)
    for position, label in fixups:
        relative = labels[label] - (position + 1)
        if not -128 <= relative < 128:
            raise ValueError("filter stub: a short jump out of range")
        code[position] = relative & 0xFF
    return Stub(bytes(code), labels["trap"], labels["go_on"], tuple(pairs), at)


def entry_patch(stub_address: int, length: int) -> bytes:
    """What replaces the displaced bytes at the funnel's entry: the jump, then nops."""
    return absolute_jump(stub_address) + b"\x90" * (length - JUMP_SIZE)


def choose_displaced(instructions: Sequence[Tuple[bytes, bool, str]]) -> Optional[List[bytes]]:
    """The first whole instructions covering >= 14 bytes, or None when one of them cannot move (a branch,
    or an operand relative to rip). ``instructions``: (bytes, is a branch, operand text) in order."""
    chosen: List[bytes] = []
    total = 0
    for raw, branches, operands in instructions:
        if total >= JUMP_SIZE:
            break
        if branches or "rip" in operands or not raw:
            return None
        chosen.append(raw)
        total += len(raw)
    return chosen if total >= JUMP_SIZE else None


# ----- which types may be cached --------------------------------------------------------------------


def type_verdict(spec: Any, chain: Sequence[str]) -> Optional[bool]:
    """The predicate's verdict at a first-chance stop knowing only the exception's type chain: True or
    False when the type decides it, None when something else (message, stack, ...) could change it.
    Three-valued (Kleene) logic over the spec tree (pydbgauto/predicates.py's to_spec)."""
    op = spec.get("op") if isinstance(spec, dict) else None
    if op == "exception_type":
        name = spec.get("name")
        return bool(chain) and (chain[0] == name or (bool(spec.get("derived")) and name in chain))
    if op == "first_chance":
        return True
    if op == "second_chance":
        return False
    if op == "not":
        inner = type_verdict(spec.get("predicate"), chain)
        return None if inner is None else not inner
    if op in ("all", "any"):
        verdicts = [type_verdict(p, chain) for p in spec.get("predicates") or []]
        decisive = op == "any"  # any: one True decides; all: one False decides
        if decisive in verdicts:
            return decisive
        return None if None in verdicts else not decisive
    return None
