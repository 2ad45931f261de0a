"""The in-target filter's stub code and its type decisions (pydbgauto/drivers/lldb/filter_stub.py), pure."""

from __future__ import annotations

import struct

import pytest

import pydbgauto as pda
from pydbgauto.drivers.lldb import filter_stub
from pydbgauto.drivers.lldb.filter_stub import type_verdict

# AppendExceptionStackFrame's first instructions in .NET 10.0.12: push rbp; mov rbp,rsp; push r15..r12;
# push rbx; sub rsp,0x68 (17 bytes), then mov r14,r8.
PROLOGUE = [
    (b"\x55", False, "%rbp"),
    (b"\x48\x89\xe5", False, "%rsp, %rbp"),
    (b"\x41\x57", False, "%r15"),
    (b"\x41\x56", False, "%r14"),
    (b"\x41\x55", False, "%r13"),
    (b"\x41\x54", False, "%r12"),
    (b"\x53", False, "%rbx"),
    (b"\x48\x83\xec\x68", False, "$0x68, %rsp"),
    (b"\x4d\x89\xc6", False, "%r8, %r14"),
]
KNF = ("System.Collections.Generic.KeyNotFoundException", "System.SystemException", "System.Exception")
IOE = ("System.InvalidOperationException", "System.SystemException", "System.Exception")
DERIVED = ("App.Custom", "System.InvalidOperationException", "System.SystemException", "System.Exception")


def test_whole_instructions_up_to_14_bytes_are_displaced():
    displaced = filter_stub.choose_displaced(PROLOGUE)
    assert displaced is not None and sum(map(len, displaced)) == 17 and len(displaced) == 8


@pytest.mark.parametrize(
    "bad",
    [(b"\xe8\0\0\0\0", True, "0x1234"), (b"\x48\x8d\x05\0\0\0\0", False, "0x10(%rip), %rax")],
)
def test_a_branch_or_rip_relative_instruction_is_refused(bad):
    assert filter_stub.choose_displaced(PROLOGUE[:2] + [bad] + PROLOGUE[2:]) is None
    assert filter_stub.choose_displaced(PROLOGUE[:3]) is None  # too short


def test_stub_layout_and_the_way_back():
    entry, data = 0x7FFFF7737820, 0x7FFFF7E20000
    displaced = filter_stub.choose_displaced(PROLOGUE)
    assert displaced is not None
    stub = filter_stub.build(entry, displaced, data, object_in_handle=True, first_frame_test=True, pid=4242)
    code = stub.code
    assert code[:3] == b"\xf6\xc1\x01"  # test cl, 1
    # the trap: six saves, gettid, tgkill(4242, tid, SIGURG) (the stop is behind its syscall), six restores
    trap = code[stub.trap : stub.go_on]
    assert (
        0xCC not in trap and trap.count(b"\x0f\x05") == 2 and code[stub.stop - 2 : stub.stop] == b"\x0f\x05"
    )
    assert b"\xbf" + struct.pack("<I", 4242) in trap and b"\xba" + struct.pack("<I", 23) in trap
    assert stub.go_on - stub.stop == 5 * len(filter_stub.SAVED)
    assert code[stub.go_on : stub.go_on + 17] == b"".join(displaced)
    assert code[-14:-8] == b"\xff\x25\0\0\0\0" and struct.unpack("<Q", code[-8:])[0] == entry + 17
    assert struct.pack("<Q", data) in code
    (start, end), (saved, back) = stub.borrowed
    assert 0 < start < end == stub.trap  # the prefilter, before the trap
    assert saved == stub.trap + 5 * len(filter_stub.SAVED) < stub.stop < back == stub.go_on  # the trap
    patch = filter_stub.entry_patch(0x1122334455667788, 17)
    assert patch == b"\xff\x25\0\0\0\0" + struct.pack("<Q", 0x1122334455667788) + b"\x90" * 3
    legacy = filter_stub.build(entry, displaced, data, object_in_handle=False, first_frame_test=False, pid=1)
    assert b"\x48\x89\xf8" in legacy.code and not legacy.code.startswith(b"\xf6\xc1")


def test_a_thread_in_the_stub_goes_on_at_the_same_point_of_the_original_code():
    displaced = filter_stub.choose_displaced(PROLOGUE)
    assert displaced is not None
    stub = filter_stub.build(0x1000, displaced, 0x2000, True, True, 1)
    assert stub.original_pc(0) == 0 and stub.original_pc(stub.trap) == 0  # the function starts again
    assert stub.original_pc(stub.stop) == 0
    offsets = [0]
    for d in displaced[:-1]:
        offsets.append(offsets[-1] + len(d))
    for (stub_offset, original), expected in zip(stub.displaced, offsets):
        assert original == expected and stub.original_pc(stub_offset) == expected
    assert stub.original_pc(len(stub.code) - 14) == 17  # the jump back: behind the displaced bytes
    # In the prefilter the borrowed registers come back from their slots before the function starts again.
    (start, _), (saved, _) = stub.borrowed
    assert not stub.restores(start - 1) and stub.restores(start)
    assert stub.restores(stub.trap - 1) and not stub.restores(stub.trap)
    assert stub.original_pc(start) == 0
    # In the trap, from its last save to its last restore (the system calls use the registers), too.
    assert not stub.restores(saved - 1) and stub.restores(saved) and stub.restores(stub.stop)
    assert stub.restores(stub.go_on - 1) and not stub.restores(stub.go_on)


def spec(predicate):  # type: ignore[no-untyped-def]
    return predicate.to_spec()


def test_the_type_alone_decides_a_type_predicate():
    exact = spec(pda.exception_type("System.InvalidOperationException"))
    derived = spec(pda.exception_type("System.InvalidOperationException", derived=True))
    assert type_verdict(exact, KNF) is False and type_verdict(exact, IOE) is True
    assert type_verdict(exact, DERIVED) is False and type_verdict(derived, DERIVED) is True
    assert type_verdict(spec(pda.first_chance() & pda.exception_type("X")), KNF) is False


def test_a_failing_type_clause_rules_out_a_conjunction_but_not_a_disjunction():
    both = spec(pda.exception_type("System.InvalidOperationException") & pda.message_matches("timeout"))
    either = spec(pda.exception_type("System.InvalidOperationException") | pda.message_matches("timeout"))
    assert type_verdict(both, KNF) is False
    assert type_verdict(both, IOE) is None  # the message decides
    assert type_verdict(either, KNF) is None and type_verdict(either, IOE) is True
    assert type_verdict(spec(~pda.exception_type("System.InvalidOperationException")), IOE) is False
    assert type_verdict(spec(pda.message_matches("x")), KNF) is None
    assert type_verdict(spec(pda.second_chance()), KNF) is False
