"""The stub's question (verdict_ask.py) run for real in this process: the fake funnel of
test_filter_stub_runs.py behind a stub that asks over real unix SOCK_SEQPACKET connections to a listening
socket here, answered by a thread as the agent's answering thread would. What the record holds, what each
verdict does, that no listener turns the question off, that no socket of the question stays open, that the
lock keeps concurrent askers' records whole, and that every register reaches the function as given."""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
import struct
import threading
import time
from typing import Callable, List, Optional, Tuple

import pytest

from pydbgauto.drivers.lldb import filter_stub as fs
from pydbgauto.drivers.lldb import verdict_ask as va
from pydbgauto.drivers.lldb.message_prefilter import Clause
from tests.drivers.lldb.test_filter_stub_runs import (
    ARGS,
    HRESULT_AT,
    MESSAGE_AT,
    OTHER_MT,
    Stubbed,
    pytestmark,
)

__all__ = ["pytestmark"]


class Answerer:
    """The agent's side: answers each question (a connection of its own) with ``verdict(request)``,
    keeping what it was asked."""

    def __init__(self, listener: socket.socket, verdict: Callable[[va.Request], bytes]) -> None:
        self.listener, self.verdict = listener, verdict
        self.requests: List[va.Request] = []
        self.sizes: List[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                record = conn.recv(8192)
                if not record:
                    continue
                self.sizes.append(len(record))
                request = va.Request.parse(record)
                self.requests.append(request)
                conn.send(self.verdict(request))


class Asking(Stubbed):
    def __init__(self, object_in_handle: bool = False) -> None:
        self.ask_page = ctypes.create_string_buffer(va.PAGE)
        super().__init__(object_in_handle, ctypes.addressof(self.ask_page))
        self.name = f"\0pydbgauto-test-{os.getpid()}-{os.urandom(4).hex()}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.name)
        self.listener.listen(4)
        self.answerer: Optional[Answerer] = None
        self.closed = False

    def answer(self, verdict: Callable[[va.Request], bytes]) -> Answerer:
        self.answerer = Answerer(self.listener, verdict)
        self.set_page(name=self.name)
        return self.answerer

    def set_page(
        self, pid: Optional[int] = None, name: Optional[str] = None, runtime: Tuple[int, int] = (0, 0)
    ) -> None:
        self.ask_page[: va.RECORD] = va.page(MESSAGE_AT, HRESULT_AT, pid or os.getpid(), name, runtime)

    def field(self, offset: int) -> int:
        return int(struct.unpack_from("<q", self.ask_page, offset)[0])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # the answerer's accept ends
        except OSError:
            pass
        if self.answerer is not None:
            self.answerer.thread.join(5)
        self.listener.close()


def sockets() -> set:
    """This process's open sockets (the listing's own directory fd is no socket)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:"):
            found.add(link)
    return found


def test_a_no_lets_the_throw_go_on_and_the_record_holds_what_a_predicate_reads(asking):
    answerer = asking.answer(lambda r: b"n")
    address = asking.exception("a message", hresult=-2146233079, mt=0x7777)
    assert not asking.stops(address)
    (request,) = answerer.requests
    assert request == va.Request(
        threading.get_native_id(), address, 0x7777, 0x80131509, "a message", False, request.return_addresses
    )
    assert len(request.return_addresses) == 1  # no runtime range given: [rsp] alone
    assert answerer.sizes == [va.REQUEST_SIZE]
    assert asking.field(va.ASKED) == 1 and asking.field(va.PASSED) == 1 and asking.field(va.LOCK) == 0


def test_any_other_answer_takes_the_trap(asking):
    asking.answer(lambda r: b"y")
    assert asking.stops(asking.exception("a message"))
    assert asking.field(va.ASKED) == 1 and asking.field(va.PASSED) == 0 and asking.field(va.LOCK) == 0
    assert asking.field(va.ON) == 1


@pytest.mark.parametrize(
    "message, expected, truncated",
    [
        (None, None, False),
        ("", "", False),
        ("\U0001f600 z", "\U0001f600 z", False),
        ("x" * va.CHARS, "x" * va.CHARS, False),
        ("y" * (va.CHARS + 5), "y" * va.CHARS, True),
    ],
)
def test_the_message_as_sent(asking, message, expected, truncated):
    answerer = asking.answer(lambda r: b"n")
    asking.stops(asking.exception(message))
    (request,) = answerer.requests
    assert request.message == expected and request.truncated is truncated


def test_when_no_one_listens_the_question_is_turned_off_and_the_trap_taken(asking):
    asking.answer(lambda r: b"n")
    asking.close()  # the debugger is gone
    before = sockets()
    assert asking.stops(asking.exception("m"))
    assert asking.field(va.ON) == 0 and asking.field(va.LOCK) == 0
    assert sockets() == before  # the socket that did not connect was closed
    assert asking.stops(asking.exception("m"))  # no more asking: straight to the trap
    assert asking.field(va.ASKED) == 1


def test_a_question_turned_off_goes_straight_to_the_trap(asking):
    asking.set_page()
    assert asking.stops(asking.exception("m"))
    assert asking.field(va.ASKED) == 0


def test_no_socket_of_the_question_stays_open(asking):
    """Each question has a socket of its own, closed before the thread goes on: no fd of ours stays in
    the program, so one it closed and reused is never written to."""
    asking.answer(lambda r: b"n")
    before = sockets()
    for _ in range(5):
        assert not asking.stops(asking.exception("m"))
    for _ in range(100):  # the answerer closes its end of the last one just after it answered
        if sockets() == before:
            break
        time.sleep(0.01)
    assert sockets() == before


def test_a_connection_closed_without_a_verdict_takes_the_trap(asking):
    asking.answer(lambda r: b"")  # sends nothing: the connection is closed with no byte
    assert asking.stops(asking.exception("m"))
    assert asking.field(va.ON) == 0


def test_a_forked_child_does_not_ask(asking):
    """A page whose pid is not this process's (a child that inherited it): the trap, no lock taken."""
    answerer = asking.answer(lambda r: b"n")
    asking.set_page(pid=1, name=asking.name)
    struct.pack_into("<q", asking.ask_page, va.LOCK, 1)  # held by a thread the fork did not copy
    assert asking.stops(asking.exception("m"))
    assert answerer.requests == [] and asking.field(va.ASKED) == 0


def test_no_object_and_cached_types_are_not_asked_about(asking):
    answerer = asking.answer(lambda r: b"n")
    assert asking.stops(0)  # no object: the agent looks
    asking.cache(OTHER_MT)
    assert not asking.stops(asking.exception("m"))  # a cached type: no stop, no question
    assert answerer.requests == []


def test_the_prefilter_rules_out_before_the_question(asking):
    answerer = asking.answer(lambda r: b"n")
    asking.prefilter([Clause(literal="needle")])
    assert not asking.stops(asking.exception("a pin"))  # cannot match: no question
    assert not asking.stops(asking.exception("a needle"))  # may match: asked, answered no
    assert [r.message for r in answerer.requests] == ["a needle"]
    assert asking.u64(fs.PF_PASSED) == 1


def test_the_object_through_a_handle():
    made = Asking(object_in_handle=True)
    try:
        answerer = made.answer(lambda r: b"n")
        address = made.exception("handled")
        assert not made.stops(address)
        (request,) = answerer.requests
        assert request.object == struct.unpack("<Q", ctypes.string_at(address, 8))[0]
        assert request.message == "handled"
    finally:
        made.close()


def test_concurrent_askers_each_get_their_own_whole_record(asking):
    """Threads asking at once (ctypes lets go of the GIL for the call): the lock keeps one request at a
    time, so each record is one thread's whole (its message names its thread)."""
    mixed: List[va.Request] = []

    def verdict(r: va.Request) -> bytes:
        if r.message != f"from {r.thread_id}":
            mixed.append(r)
        return b"n"

    answerer = asking.answer(verdict)
    calls, results = 150, []

    def run() -> None:
        address = asking.exception(f"from {threading.get_native_id()}")
        results.extend(asking.function(address, *ARGS[1:]) for _ in range(calls))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0x1234] * 4 * calls and not mixed and len(answerer.requests) == 4 * calls
    assert len({r.thread_id for r in answerer.requests}) == 4
    assert asking.field(va.PASSED) == 4 * calls and asking.field(va.LOCK) == 0


def test_the_agent_knows_where_a_thread_may_hold_the_lock():
    stub = fs.build(0x1000, [b"\x90"] * 16, 0x2000, False, False, os.getpid(), ask=0x3000)
    start, end = stub.asking
    assert stub.trap == end and start < end
    assert stub.holds_lock(start) and stub.holds_lock(end - 1) and not stub.holds_lock(stub.trap)
    assert all(stub.restores(offset) for offset in range(start, end))  # the registers are in their slots
    plain = fs.build(0x1000, [b"\x90"] * 16, 0x2000, False, False, os.getpid())
    assert plain.asking == (0, 0) and not any(plain.holds_lock(o) for o in range(len(plain.code)))


class Caller:
    """A frame of known shape in front of the stub (``push rbp; mov rbp, rsp; call stub``), standing in
    for the runtime's frame that calls the funnel: the stub's ``[rsp]`` is ``returns`` and its rbp this
    frame's, whose ``[rbp+8]`` returns into ctypes' libffi."""

    def __init__(self, asking: Asking) -> None:
        self.code = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self.at = ctypes.addressof(ctypes.c_char.from_buffer(self.code))
        body = b"\x55\x48\x89\xe5" + b"\x48\xb8" + struct.pack("<Q", asking.code_at) + b"\xff\xd0"
        self.returns = self.at + len(body)
        body += b"\x5d\xc3"  # pop rbp; ret
        self.code[: len(body)] = body
        self.function = ctypes.CFUNCTYPE(ctypes.c_long, *[ctypes.c_uint64] * 6)(self.at)


def mapping_of(address: int) -> str:
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, rest = line.split(" ", 1)
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= address < hi:
                return rest.split()[-1] if len(rest.split()) >= 5 else ""
    return "(unmapped)"


def asked_through(asking: Asking, runtime: Callable[[Caller], Tuple[int, int]]) -> Tuple[Caller, va.Request]:
    caller = Caller(asking)
    answerer = asking.answer(lambda r: b"n")
    asking.set_page(name=asking.name, runtime=runtime(caller))
    assert caller.function(asking.exception("m"), *ARGS[1:]) == 0x1234
    (request,) = answerer.requests
    return caller, request


def test_without_a_runtime_range_only_rsp_is_sent(asking):
    caller, request = asked_through(asking, lambda c: (0, 0))
    assert request.return_addresses == (caller.returns,)


def test_the_return_addresses_are_followed_while_in_the_runtime(asking):
    """With the caller's code as "the runtime": [rsp] is in it, so its frame's [rbp+8] follows, which is
    out of it (into libffi): the chain ends there, at what stands for the thrower."""
    caller, request = asked_through(asking, lambda c: (c.at, c.at + 4096))
    first, second = request.return_addresses
    assert first == caller.returns
    assert "ffi" in mapping_of(second)


def test_a_chain_through_frames_without_frame_pointers_stays_bounded(asking):
    """Everything counted as the runtime: the stub follows rbp up through ctypes' and Python's frames,
    some of which keep no frame pointer, and stops within SITES addresses, upwards and near rsp only."""
    _, request = asked_through(asking, lambda c: (0, 1 << 63))
    assert 2 <= len(request.return_addresses) <= va.SITES
