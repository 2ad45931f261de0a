"""stop_question.py's parts without lldb: the record it sends is the stub's (verdict_ask.encode), and the
Python side's server answers lldb only once it is admitted (its pid, from op_ask's reply). The agent's
asking at a real .NET 10 stop runs in tests/integration/test_python_question.py."""

from __future__ import annotations

import os
import socket
from typing import Any, Dict

import pytest

from pydbgauto.drivers.lldb import stop_question
from pydbgauto.drivers.lldb import verdict_ask as va
from pydbgauto.drivers.lldb.verdict_server import VerdictServer


@pytest.mark.parametrize(
    "message", [None, "", "a message", "\U0001f600 z", "x" * va.CHARS, "y" * (va.CHARS + 5)]
)
def test_the_record_is_the_stubs(message: Any) -> None:
    request = va.Request(7, 0x1000, 0x2000, 0x80131509, message, False, (0x7000, 0x5000))
    record = va.encode(request)
    assert len(record) == va.REQUEST_SIZE
    parsed = va.Request.parse(record)
    if message is not None and len(message.encode("utf-16-le")) // 2 > va.CHARS:
        assert parsed.truncated and parsed.message == message[: va.CHARS]
    else:
        assert parsed == request


def ask(name: str, request: va.Request) -> bytes:
    """As stop_question.let_go asks; b"" when no verdict came (a refused connection is closed: the send
    or the receive sees it, whichever comes after)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.settimeout(5)
        conn.connect(name)
        try:
            conn.send(va.encode(request))
            return conn.recv(1)
        except (BrokenPipeError, ConnectionResetError):
            return b""


def test_the_server_answers_another_process_only_once_admitted() -> None:
    seen = []
    server = VerdictServer(1, lambda request: seen.append(request) or True)  # the "target" is pid 1
    try:
        request = va.Request(7, 0x1000, 0x2000, 5, "m", False)
        assert ask(server.name, request) == b"" and server.refused == 1 and not seen
        server.pids.add(os.getpid())  # lldb's pid, as op_ask tells it
        assert ask(server.name, request) == b"n" and seen == [request]
        assert [r for r, _ in server.take_passed()] == [request]
    finally:
        server.close()


class NotAnAgent:
    """A test double of the agent's attributes stop_question reads (the real agent runs only in lldb)."""

    def __init__(self, **values: Any) -> None:
        self.filter, self.report_fields, self.ask_python = None, True, "\0name"
        self.asking_python, self.mechanism = False, "append-frame"
        self.stats: Dict[str, int] = {"asked_at_stops": 0, "let_go_at_stops": 0}
        self.__dict__.update(values)


def test_asked_at_stops_only_for_a_callable_on_net9_and_later() -> None:
    assert stop_question.wanted(NotAnAgent())
    for values in (
        {"mechanism": "cxa-rethrow"},  # .NET 8: the stub asks
        {"asking_python": True},
        {"ask_python": None},
        {"report_fields": False},
        {"filter": object()},  # a predicate the agent decides itself
    ):
        assert not stop_question.wanted(NotAnAgent(**values)), values
