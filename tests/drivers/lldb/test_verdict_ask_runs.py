"""The stub's question (verdict_ask.py) run for real in this process: the fake funnel of
test_filter_stub_runs.py behind a stub that asks over a real unix SOCK_SEQPACKET socket pair, answered by a
thread here as the agent's answering thread would. What the record holds, what each verdict does, that a
closed peer turns the question off, that the lock keeps concurrent askers' records whole, and that every
register reaches the function as given."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import struct
import threading
from typing import Any, Callable, Iterator, List, Optional

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
    """The agent's side: answers each request with ``verdict(request)``, keeping what it was asked."""

    def __init__(self, sock: socket.socket, verdict: Callable[[va.Request], bytes]) -> None:
        self.sock, self.verdict = sock, verdict
        self.requests: List[va.Request] = []
        self.sizes: List[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            record = self.sock.recv(8192)
            if not record:
                return
            self.sizes.append(len(record))
            request = va.Request.parse(record)
            self.requests.append(request)
            self.sock.send(self.verdict(request))


class Asking(Stubbed):
    def __init__(self, object_in_handle: bool = False) -> None:
        self.ask_page = ctypes.create_string_buffer(va.PAGE)
        super().__init__(object_in_handle, ctypes.addressof(self.ask_page))
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.answerer: Optional[Answerer] = None

    def answer(self, verdict: Callable[[va.Request], bytes]) -> Answerer:
        self.answerer = Answerer(self.theirs, verdict)
        fd = os.dup(self.ours.fileno())  # the stub's own: it closes it when no one answers
        st = os.fstat(fd)
        self.set_page(fd=fd, inode=st.st_ino, dev=st.st_dev)
        return self.answerer

    def set_page(self, pid: Optional[int] = None, **how: Any) -> None:
        self.ask_page[: va.RECORD] = va.page(MESSAGE_AT, HRESULT_AT, pid or os.getpid(), **how)

    def field(self, offset: int) -> int:
        return int(struct.unpack_from("<q", self.ask_page, offset)[0])

    def close(self) -> None:
        fd = self.field(va.FD)
        if fd >= 0 and fd != self.ours.fileno():
            os.close(fd)  # the stub's socket it did not close itself
        self.ours.close()  # the answerer sees end of file and ends
        if self.answerer is not None:
            self.answerer.thread.join(5)
        self.theirs.close()


@pytest.fixture
def asking() -> Iterator[Asking]:
    made = Asking()

    def count(*_: Any) -> None:
        made.traps += 1

    previous = signal.signal(signal.SIGURG, count)
    try:
        yield made
    finally:
        signal.signal(signal.SIGURG, previous)
        made.close()


def test_a_no_lets_the_throw_go_on_and_the_record_holds_what_a_predicate_reads(asking):
    answerer = asking.answer(lambda r: b"n")
    address = asking.exception("a message", hresult=-2146233079, mt=0x7777)
    assert not asking.stops(address)
    (request,) = answerer.requests
    assert request == va.Request(threading.get_native_id(), address, 0x7777, -2146233079, "a message", False)
    assert answerer.sizes == [va.REQUEST_SIZE]
    assert asking.field(va.ASKED) == 1 and asking.field(va.PASSED) == 1 and asking.field(va.LOCK) == 0


def test_any_other_answer_takes_the_trap(asking):
    asking.answer(lambda r: b"y")
    assert asking.stops(asking.exception("a message"))
    assert asking.field(va.ASKED) == 1 and asking.field(va.PASSED) == 0 and asking.field(va.LOCK) == 0


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


def test_when_no_one_answers_the_question_is_turned_off_and_the_trap_taken(asking):
    asking.answer(lambda r: b"n")
    asking.theirs.shutdown(socket.SHUT_RDWR)  # the debugger is gone
    assert asking.stops(asking.exception("m"))
    assert asking.field(va.FD) == -1 and asking.field(va.LOCK) == 0
    assert asking.stops(asking.exception("m"))  # no more asking: straight to the trap
    assert asking.field(va.ASKED) == 1


def test_a_question_turned_off_goes_straight_to_the_trap(asking):
    asking.set_page(fd=va.FD_OFF)
    assert asking.stops(asking.exception("m"))
    assert asking.field(va.ASKED) == 0


def test_the_first_asker_connects(asking, tmp_path):
    """Nothing runs in the target to set the question up: the first throw asked about connects."""
    path = str(tmp_path / "verdicts")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    asking.set_page(path=path)
    accepted: List[Answerer] = []
    accepting = threading.Thread(
        target=lambda: accepted.append(Answerer(listener.accept()[0], lambda r: b"n"))
    )
    accepting.start()
    try:
        assert not asking.stops(asking.exception("first"))
        assert not asking.stops(asking.exception("second"))
        accepting.join(5)
        assert [r.message for r in accepted[0].requests] == ["first", "second"]
        fd = asking.field(va.FD)
        assert fd >= 0 and os.get_inheritable(fd) is False  # SOCK_CLOEXEC: no child inherits it
        assert asking.field(va.INODE) == os.fstat(fd).st_ino
        accepted[0].sock.shutdown(socket.SHUT_RDWR)  # the agent goes: the stub closes its socket
        assert asking.stops(asking.exception("third"))
        assert asking.field(va.FD) == va.FD_OFF
    finally:
        accepted and accepted[0].sock.close()
        listener.close()


def test_no_one_listening_turns_the_question_off(asking, tmp_path):
    asking.set_page(path=str(tmp_path / "nobody"))
    before = set(os.listdir("/proc/self/fd"))
    assert asking.stops(asking.exception("m"))
    assert asking.field(va.FD) == va.FD_OFF
    assert set(os.listdir("/proc/self/fd")) <= before  # the socket that did not connect was closed


def test_an_fd_the_program_reused_is_never_written_to(asking):
    """The program closed the socket's fd and the number now names a connection of its own: fstat tells,
    the question is off, and the impostor got nothing."""
    answerer = asking.answer(lambda r: b"n")
    mine, other_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        reused = asking.field(va.FD)
        os.dup2(mine.fileno(), reused)  # the same number, another socket
        assert asking.stops(asking.exception("m"))
        assert asking.field(va.FD) == va.FD_OFF and answerer.requests == []
        other_end.setblocking(False)
        with pytest.raises(BlockingIOError):
            other_end.recv(8192)
        os.close(reused)  # the program's, left alone by the stub
    finally:
        mine.close()
        other_end.close()


def test_a_forked_child_does_not_ask(asking):
    """A page whose pid is not this process's (a child that inherited it): the trap, no lock taken."""
    answerer = asking.answer(lambda r: b"n")
    asking.set_page(pid=1, fd=asking.field(va.FD))
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
