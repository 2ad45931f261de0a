"""The stub's machine code run for real, in this process (x86-64 Linux): a fake funnel (16 nops, then code
that stores its six argument registers and returns 0x1234) behind the stub, fake exception and string
objects laid out as CoreCLR's (MethodTable, then fields; a string's length at +8, its UTF-16 text at +12).
The trap sends this thread SIGURG; a Python handler counts it and the code goes on behind it, as under
lldb (and with SIGURG's default, ignored: as after the debugger's death). No lldb, no runtime: what the stub
computes, and that it gives every register back."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import platform
import signal
import struct
import sys
from typing import Any, Iterator, List, Optional, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydbgauto.drivers.lldb import filter_stub as fs
from pydbgauto.drivers.lldb import message_prefilter as mp
from pydbgauto.drivers.lldb.message_prefilter import Clause

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() != "x86_64", reason="x86-64 Linux code"
)
MESSAGE_AT, HRESULT_AT, OTHER_MT = 0x10, 0x40, 0x5555
ARGS = [0x1111111111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666]
# mov [r11+8*i], rdi | rsi | rdx | rcx | r8 | r9
STORES = [
    b"\x49\x89\x7b",
    b"\x49\x89\x73",
    b"\x49\x89\x53",
    b"\x49\x89\x4b",
    b"\x4d\x89\x43",
    b"\x4d\x89\x4b",
]


class Stubbed:
    """A stub for a fake funnel in an executable page of this process, with its data page."""

    def __init__(self, object_in_handle: bool, ask: Optional[int] = None) -> None:
        self.code = mmap.mmap(-1, fs.PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self.code_at = ctypes.addressof(ctypes.c_char.from_buffer(self.code))
        self.data = ctypes.create_string_buffer(fs.PAGE)
        self.registers = ctypes.create_string_buffer(48)
        self.kept: List[Any] = []
        self.traps = 0
        self.object_in_handle = object_in_handle
        body = b"\x49\xbb" + struct.pack("<Q", ctypes.addressof(self.registers))  # mov r11, registers
        for i, store in enumerate(STORES):
            body += store + bytes([8 * i])
        body += b"\xb8\x34\x12\x00\x00\xc3"  # mov eax, 0x1234; ret
        entry = self.code_at + fs.PAGE // 2
        self.code[fs.PAGE // 2 : fs.PAGE // 2 + 16 + len(body)] = b"\x90" * 16 + body
        self.stub = fs.build(
            entry, [b"\x90"] * 16, ctypes.addressof(self.data), object_in_handle, False, os.getpid(), ask
        )
        self.code[: len(self.stub.code)] = self.stub.code
        self.function = ctypes.CFUNCTYPE(ctypes.c_long, *[ctypes.c_uint64] * 6)(self.code_at)

    def u64(self, offset: int) -> int:
        return int(struct.unpack_from("<Q", self.data, offset)[0])

    def prefilter(self, clauses: Sequence[Clause]) -> None:
        struct.pack_into("<QQQQ", self.data, fs.PREFILTER, MESSAGE_AT, HRESULT_AT, 0, len(clauses))
        if clauses:
            made = mp.table(clauses)
            self.data[fs.PF_TABLE : fs.PF_TABLE + len(made)] = made

    def cache(self, *method_tables: int) -> None:
        struct.pack_into("<QQ", self.data, 0, len(method_tables), fs.CAPACITY)
        for i, mt in enumerate(method_tables):
            struct.pack_into("<Q", self.data, fs.DATA_ENTRIES + 8 * i, mt)

    def exception(self, message: Optional[str], hresult: int = 0, mt: int = OTHER_MT) -> int:
        text = None
        if message is not None:
            encoded = message.encode("utf-16-le")
            text = ctypes.create_string_buffer(struct.pack("<QI", 0xAAAA, len(encoded) // 2) + encoded)
        made = ctypes.create_string_buffer(0x50)
        struct.pack_into("<QQi", made, 0, mt, 0, 0)
        struct.pack_into("<Q", made, MESSAGE_AT, ctypes.addressof(text) if text else 0)
        struct.pack_into("<i", made, HRESULT_AT, hresult)
        self.kept += [text, made]
        if not self.object_in_handle:
            return ctypes.addressof(made)
        handle = ctypes.c_uint64(ctypes.addressof(made))
        self.kept.append(handle)
        return ctypes.addressof(handle)

    def stops(self, address: int) -> bool:
        """Call the funnel through the stub: True when it reached the trap. Every argument register
        reaches the function as given, and it returns to its caller."""
        before = self.traps
        args = [address] + ARGS[1:]
        assert self.function(*args) == 0x1234
        assert list(struct.unpack("<6Q", self.registers.raw)) == args
        return self.traps > before


@contextlib.contextmanager
def counting_traps(made: Stubbed) -> Iterator[Stubbed]:
    """SIGURG (the trap) counted in ``made.traps`` while the block runs."""

    def count(*_: Any) -> None:
        made.traps += 1

    previous = signal.signal(signal.SIGURG, count)
    try:
        yield made
    finally:
        signal.signal(signal.SIGURG, previous)


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    with counting_traps(Stubbed(object_in_handle=False)) as made:
        yield made


def test_with_no_one_to_catch_the_trap_the_function_runs_as_called():
    """SIGURG's default action is to ignore it: after the debugger's death a thread that reaches the trap
    goes on (an int3 there killed the target: docs/linux-fast-filter.md, "A trap that is harmless")."""
    made = Stubbed(object_in_handle=False)
    assert signal.getsignal(signal.SIGURG) == signal.SIG_DFL
    for _ in range(3):
        assert not made.stops(made.exception("anything"))  # reached the trap (not cached), went on
    assert made.u64(fs.DATA_SEEN) == 3


def test_without_a_prefilter_every_uncached_throw_stops(stubbed):
    assert stubbed.stops(stubbed.exception("anything"))
    assert stubbed.stops(0)  # no object: the agent looks
    stubbed.cache(OTHER_MT)
    assert not stubbed.stops(stubbed.exception("anything"))  # a cached type: no stop
    assert stubbed.u64(fs.DATA_PASSED) == 1 and stubbed.u64(fs.DATA_SEEN) == 3


@pytest.mark.parametrize(
    "message, stops",
    [
        ("hello world", True),
        ("lo w", True),  # the whole message
        ("xxxlo w", True),  # at the very end
        ("lo wxxx", True),  # at the very start
        ("hello", False),
        ("lo", False),  # shorter than the literal
        ("", False),
        (None, False),  # no message never matches
        ("LO W", False),  # case counts
    ],
)
def test_a_literal_stops_only_a_message_that_contains_it(stubbed, message, stops):
    stubbed.prefilter([Clause(literal="lo w")])
    assert stubbed.stops(stubbed.exception(message)) is stops
    assert stubbed.u64(fs.PF_PASSED) == (0 if stops else 1)


def test_a_message_too_long_to_search_stops(stubbed):
    stubbed.prefilter([Clause(literal="needle")])
    assert not stubbed.stops(stubbed.exception("x" * fs.MAX_SEARCHED))
    assert stubbed.stops(stubbed.exception("x" * (fs.MAX_SEARCHED + 1)))  # the agent decides it


def test_hresult_and_several_clauses(stubbed):
    stubbed.prefilter([Clause(hresult=0x80131509)])
    assert stubbed.stops(stubbed.exception("x", hresult=-2146233079))  # 0x80131509 as the int it is
    assert not stubbed.stops(stubbed.exception("x", hresult=1))
    stubbed.prefilter([Clause(literal="abc", hresult=7), Clause(literal="\U0001f600 z")])
    assert stubbed.stops(stubbed.exception("-abc-", hresult=7))
    assert not stubbed.stops(stubbed.exception("-abc-", hresult=8))  # both parts of a clause
    assert stubbed.stops(stubbed.exception("a \U0001f600 z", hresult=8))  # the second clause
    assert not stubbed.stops(stubbed.exception("q", hresult=7))


def test_a_cached_type_passes_before_the_prefilter(stubbed):
    stubbed.prefilter([Clause(literal="abc")])
    stubbed.cache(OTHER_MT)
    assert not stubbed.stops(stubbed.exception("abc"))
    assert stubbed.u64(fs.DATA_PASSED) == 1 and stubbed.u64(fs.PF_PASSED) == 0


def test_the_object_through_a_handle():
    made = Stubbed(object_in_handle=True)
    previous = signal.signal(signal.SIGURG, lambda *_: setattr(made, "traps", made.traps + 1))
    try:
        made.prefilter([Clause(literal="needle")])
        assert made.stops(made.exception("a needle"))
        assert not made.stops(made.exception("a pin"))
    finally:
        signal.signal(signal.SIGURG, previous)


@settings(max_examples=300, deadline=None)
@given(
    message=st.one_of(st.none(), st.text(alphabet="ab\u00e9\U0001f600 ", max_size=40)),
    literal=st.text(alphabet="ab\u00e9\U0001f600 ", min_size=1, max_size=6),
)
def test_the_stub_agrees_with_python_on_every_message(message, literal):
    made = Stubbed(object_in_handle=False)
    previous = signal.signal(signal.SIGURG, lambda *_: setattr(made, "traps", made.traps + 1))
    try:
        made.prefilter([Clause(literal=literal)])
        assert made.stops(made.exception(message)) is (message is not None and literal in message)
    finally:
        signal.signal(signal.SIGURG, previous)
