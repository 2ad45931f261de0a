"""The in-target type filter's machine code and decisions (pure: no lldb, no process).

The agent replaces the first whole instructions of the runtime's throw funnel with a jump to a stub in a
page of its own (docs/linux-fast-filter.md). The stub lets a call through without a stop when it is not
a throw (.NET 9+: not the first frame of a first pass) or when the exception's MethodTable is in the
negative cache (types known not to match); else it reaches the trap: ``tgkill(pid, gettid(), SIGURG)``,
which lldb reports as a SIGURG stop with the pc just behind the ``syscall`` (no lldb breakpoint, so no step
over it at the resume: docs/linux-fast-filter.md measured the difference). With no tracer the signal is
ignored (neither runtime catches SIGURG), so a thread that reaches the trap after the debugger's death goes
on; an ``int3`` there killed the target (proved: docs/linux-fast-filter.md, "A trap that is harmless").
The trap keeps the argument registers in their red-zone slots across its two system calls. Then it runs
the displaced instructions and jumps back behind them.

With a message/HResult prefilter written (.NET 8: message_prefilter.py) a throw whose type is not cached
is let through too when it holds none of the prefilter's clauses.

Registers: rax, r10, r11 and the flags, all dead at a function's entry (caller-saved, no argument); the
prefilter and the trap borrow six more (SAVED), kept in the red zone below rsp (rsp never moves: a thread
stopped anywhere in the stub starts the function again once they are back, ``Stub.restores``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pydbgauto.drivers.lldb import verdict_ask
from pydbgauto.type_names import names_any, names_type

# The data page, first half: the type cache's entry count, its capacity, every throw seen, then the
# MethodTables, then for each of them the throws let through without a stop.
DATA_COUNT, DATA_CAPACITY, DATA_SEEN, DATA_ENTRIES = 0x0, 0x8, 0x10, 0x40
PAGE = 4096
PREFILTER = PAGE // 2
CAPACITY = (PREFILTER - DATA_ENTRIES) // 16
DATA_PASSED = DATA_ENTRIES + 8 * CAPACITY
# Second half: the message/HResult prefilter (.NET 8 only: message_prefilter.py says why and what it holds).
PF_MESSAGE_AT, PF_HRESULT_AT, PF_PASSED, PF_CLAUSES, PF_TABLE = (PREFILTER + 8 * i for i in range(5))
JUMP_SIZE = 14  # jmp [rip+0]; .quad target
NOP = 0x90
SIGURG, SYS_GETTID, SYS_TGKILL = 23, 186, 234
# Registers the prefilter borrows, with the red-zone slot (below rsp, never moved) each is saved in.
SAVED = (("rcx", 8), ("rdx", 16), ("rsi", 24), ("rdi", 32), ("r8", 40), ("r9", 48))
_SAVE = {
    "rcx": b"\x48\x89\x4c",
    "rdx": b"\x48\x89\x54",
    "rsi": b"\x48\x89\x74",
    "rdi": b"\x48\x89\x7c",
    "r8": b"\x4c\x89\x44",
    "r9": b"\x4c\x89\x4c",
}  # mov [rsp-n], reg  (then 0x24, -n)
CHARS_SLOT, LENGTH_SLOT = 56, 64  # the message's text and length, in the red zone too
JE, JNE, JL, JNS, JA = 0x84, 0x85, 0x8C, 0x89, 0x87
MAX_SEARCHED = 1 << 16  # characters of a message the prefilter searches (exception_fields.MAX_MESSAGE)


def absolute_jump(target: int) -> bytes:
    return b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", target)


@dataclass(frozen=True)
class Stub:
    code: bytes
    trap: int  # offset of the trap (the tgkill) in the code
    stop: int  # offset just behind its syscall: where a thread that took the trap stops
    go_on: int  # offset of the first displaced instruction
    displaced: Tuple[Tuple[int, int], ...]  # (offset in the stub, offset in the original function)
    length: int  # bytes displaced from the function's entry
    # [start, end): where the SAVED registers are in their slots and in use (the prefilter, the trap)
    borrowed: Tuple[Tuple[int, int], ...] = ()
    # [start, end) of the question (verdict_ask.py) where a thread may hold its lock or wait in a system
    # call: such a thread must run out of the stub, never be moved (the kernel restarts its call)
    asking: Tuple[int, int] = (0, 0)

    def original_pc(self, offset: int) -> int:
        """Where a thread at ``offset`` in the stub goes on in the original function (offset from its
        entry), so that the stub can be removed under it: the filter part and the trap start the function
        again (its arguments are untouched there, or back from their slots: ``restores``), a displaced
        instruction resumes at its original place, the final jump behind the displaced bytes."""
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

    def holds_lock(self, offset: int) -> bool:
        """True when a thread at ``offset`` may hold the question's lock or wait in its system call."""
        return self.asking[0] <= offset < self.asking[1]

    def restores(self, offset: int) -> bool:
        """True when a thread at ``offset`` must get the SAVED registers back from their red-zone slots
        before it starts the function again (the prefilter has them in use)."""
        return any(start <= offset < end for start, end in self.borrowed)


class _Assembler:
    """Bytes with labels and rel32 jumps (the stub outgrew short jumps)."""

    def __init__(self) -> None:
        self.code = bytearray()
        self.labels: Dict[str, int] = {}
        self.fixups: List[Tuple[int, str]] = []

    def __iadd__(self, raw: bytes) -> "_Assembler":
        self.code += raw
        return self

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def jump(self, label: str, condition: Optional[int] = None) -> None:
        self.code += b"\xe9" if condition is None else bytes([0x0F, condition])
        self.code += b"\0\0\0\0"
        self.fixups.append((len(self.code) - 4, label))

    def finish(self) -> bytes:
        for position, label in self.fixups:
            self.code[position : position + 4] = struct.pack("<i", self.labels[label] - (position + 4))
        return bytes(self.code)


def build(
    entry: int,
    displaced: Sequence[bytes],
    data: int,
    object_in_handle: bool,
    first_frame_test: bool,
    pid: int,
    ask: Optional[int] = None,
) -> Stub:
    """The stub for a funnel at ``entry`` whose first instructions are ``displaced``, in process ``pid``.

    ``object_in_handle``: the exception object is ``*(rdi)`` (.NET 9+'s ObjectHandleOnStack), else ``rdi``.
    ``first_frame_test``: only calls with ``ecx & 1`` are throws (AppendExceptionStackFrame's flags).
    ``ask``: the address of a verdict_ask page: a throw the filter cannot rule out asks before the trap.
    """
    a = _Assembler()
    load_object = b"\x48\x8b\x07" if object_in_handle else b"\x48\x89\xf8"  # mov rax, [rdi] | mov rax, rdi
    if first_frame_test:
        a += b"\xf6\xc1\x01"  # test cl, 1
        a.jump("go_on", JE)
    a += b"\x49\xba" + struct.pack("<Q", data)  # mov r10, data
    a += b"\xf0\x49\xff\x42" + bytes([DATA_SEEN])  # lock inc qword [r10+SEEN]
    a += load_object
    a += b"\x48\x85\xc0"  # test rax, rax
    a.jump("trap", JE)
    a += b"\x48\x8b\x00"  # mov rax, [rax]: the MethodTable
    a += b"\x4d\x8b\x1a"  # mov r11, [r10]: the cache's count
    a += b"\x49\x83\xc2" + bytes([DATA_ENTRIES])  # add r10, ENTRIES
    a.label("loop")
    a += b"\x4d\x85\xdb"  # test r11, r11
    a.jump("miss", JE)
    a += b"\x49\x3b\x02"  # cmp rax, [r10]
    a.jump("hit", JE)
    a += b"\x49\x83\xc2\x08"  # add r10, 8
    a += b"\x49\xff\xcb"  # dec r11
    a.jump("loop")
    a.label("hit")
    a += b"\xf0\x49\xff\x82" + struct.pack("<i", DATA_PASSED - DATA_ENTRIES)  # lock inc qword [r10+n]
    a.jump("go_on")
    a.label("miss")
    _prefilter(a, data, load_object, "trap" if ask is None else "ask")
    if ask is not None:
        verdict_ask.emit(a, ask, load_object, _save, _restore)
    a.label("trap")
    _trap(a, pid)
    a.label("go_on")
    pairs: List[Tuple[int, int]] = []
    at = 0
    for instruction in displaced:
        pairs.append((len(a.code), at))
        a += instruction
        at += len(instruction)
    a += absolute_jump(entry + at)
    code = a.finish()
    borrowed = [(a.labels["borrowed"], a.labels["ask" if ask is not None else "trap"])]
    asking = (0, 0)
    if ask is not None:
        borrowed.append((a.labels["ask_saved"], a.labels["ask_end"]))
        asking = (a.labels["locked"], a.labels["ask_end"])
    borrowed.append((a.labels["trap_saved"], a.labels["go_on"]))
    return Stub(
        code, a.labels["trap"], a.labels["stop"], a.labels["go_on"], tuple(pairs), at, tuple(borrowed), asking
    )


def _save(a: _Assembler) -> None:
    for register, slot in SAVED:
        a += _SAVE[register] + bytes([0x24, (-slot) & 0xFF])  # mov [rsp-n], reg


def _restore(a: _Assembler) -> None:
    for register, slot in SAVED:
        save = _SAVE[register]
        a += bytes([save[0], 0x8B, save[2]]) + bytes([0x24, (-slot) & 0xFF])  # mov reg, [rsp-n]


def _trap(a: _Assembler, pid: int) -> None:
    """tgkill(pid, gettid(), SIGURG), the argument registers kept in their slots around it (syscall takes
    rdi, rsi, rdx and clobbers rcx, r11, rax)."""
    _save(a)
    a.label("trap_saved")
    a += b"\xb8" + struct.pack("<I", SYS_GETTID)  # mov eax, SYS_gettid
    a += b"\x0f\x05"  # syscall
    a += b"\x89\xc6"  # mov esi, eax: this thread
    a += b"\xbf" + struct.pack("<I", pid)  # mov edi, pid
    a += b"\xba" + struct.pack("<I", SIGURG)  # mov edx, SIGURG
    a += b"\xb8" + struct.pack("<I", SYS_TGKILL)  # mov eax, SYS_tgkill
    a += b"\x0f\x05"  # syscall: the stop, under a tracer
    a.label("stop")
    _restore(a)


def _prefilter(a: _Assembler, data: int, load_object: bytes, then: str) -> None:
    """The message/HResult clauses (message_prefilter.py's table): a throw that holds none goes on
    without a stop; one that holds a clause goes to ``then`` (the trap, or the question placed right
    behind). Off (straight to ``then``) while the clause count is 0."""

    def r10_disp(raw: bytes, offset: int) -> bytes:
        return raw + struct.pack("<i", offset)

    a += b"\x49\xba" + struct.pack("<Q", data)  # mov r10, data
    a += r10_disp(b"\x49\x83\xba", PF_CLAUSES) + b"\x00"  # cmp qword [r10+CLAUSES], 0
    a.jump(then, JE)
    _save(a)
    a.label("borrowed")
    a += load_object
    a += r10_disp(b"\x4d\x8b\x8a", PF_HRESULT_AT)  # mov r9, [r10+HRESULT_AT]
    a += b"\x46\x8b\x04\x08"  # mov r8d, [rax+r9]: the HResult
    a += r10_disp(b"\x4d\x8b\x8a", PF_MESSAGE_AT)  # mov r9, [r10+MESSAGE_AT]
    a += b"\x4a\x8b\x04\x08"  # mov rax, [rax+r9]: the message (a string) or 0
    a += b"\x31\xd2"  # xor edx, edx
    a += b"\x48\x85\xc0"  # test rax, rax
    a.jump("have_text", JE)
    a += b"\x8b\x50\x08"  # mov edx, [rax+8]: its length
    a += b"\x81\xfa" + struct.pack("<I", MAX_SEARCHED)  # cmp edx, MAX_SEARCHED
    a.jump("stop_here", JA)  # a longer text is left to the agent: the search stays bounded
    a += b"\x48\x83\xc0\x0c"  # add rax, 12: its UTF-16 text
    a.label("have_text")
    a += b"\x48\x89\x44\x24" + bytes([(-CHARS_SLOT) & 0xFF])  # mov [rsp-CHARS], rax
    a += b"\x48\x89\x54\x24" + bytes([(-LENGTH_SLOT) & 0xFF])  # mov [rsp-LENGTH], rdx
    a += r10_disp(b"\x4d\x8d\x9a", PF_TABLE)  # lea r11, [r10+TABLE]
    a.label("clause")
    a += b"\x41\x8b\x03"  # mov eax, [r11]: the clause's kind; 0 ends the table
    a += b"\x85\xc0"  # test eax, eax
    a.jump("pass", JE)  # no clause holds: cannot match
    a += b"\xa8\x01"  # test al, 1: an HResult to equal
    a.jump("no_hresult", JE)
    a += b"\x45\x3b\x43\x04"  # cmp r8d, [r11+4]
    a.jump("next", JNE)
    a.label("no_hresult")
    a += b"\xa8\x02"  # test al, 2: a literal the message must contain
    a.jump("stop_here", JE)  # the HResult alone holds the clause
    a += b"\x41\x8b\x4b\x0c"  # mov ecx, [r11+12]: the literal's length m (>= 1)
    a += b"\x48\x8b\x44\x24" + bytes([(-LENGTH_SLOT) & 0xFF])  # mov rax, [rsp-LENGTH]: n
    a += b"\x48\x29\xc8"  # sub rax, rcx: the last position, n - m
    a.jump("next", JL)
    a += b"\x4c\x8b\x4c\x24" + bytes([(-CHARS_SLOT) & 0xFF])  # mov r9, [rsp-CHARS]
    a.label("position")
    a += b"\x4c\x89\xce"  # mov rsi, r9
    a += b"\x41\x8b\x7b\x08"  # mov edi, [r11+8]: the literal's offset in the data page
    a += b"\x4c\x01\xd7"  # add rdi, r10
    a += b"\x41\x8b\x4b\x0c"  # mov ecx, [r11+12]
    a += b"\xf3\x66\xa7"  # repe cmpsw (the ABI leaves the direction flag clear at a call)
    a.jump("stop_here", JE)  # all m characters equal: the literal is there
    a += b"\x49\x83\xc1\x02"  # add r9, 2
    a += b"\x48\xff\xc8"  # dec rax
    a.jump("position", JNS)
    a.label("next")
    a += b"\x49\x83\xc3\x10"  # add r11, 16
    a.jump("clause")
    a.label("pass")
    _restore(a)
    a += r10_disp(b"\xf0\x49\xff\x82", PF_PASSED)  # lock inc qword [r10+PASSED]
    a.jump("go_on")
    a.label("stop_here")
    _restore(a)  # then ``then``, just behind


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
        if not isinstance(name, str) or not chain:
            return False
        return names_type(name, chain[0]) or (bool(spec.get("derived")) and names_any(name, chain))
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
