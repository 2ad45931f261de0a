"""The agent's answering thread (verdict_server.py) against the stub's real question, run in this process
(test_verdict_ask_runs.py's harness: the stub connects to the server's abstract name itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from pydbgauto.drivers.lldb import verdict_ask as va
from pydbgauto.drivers.lldb.verdict_server import VerdictServer
from tests.drivers.lldb.test_verdict_ask_runs import Asking, pytestmark

__all__ = ["pytestmark"]


def served(made: Asking, decide: Any) -> VerdictServer:
    server = VerdictServer(os.getpid(), decide)
    made.set_page(name=server.name)
    return server


def test_a_throw_decided_not_to_match_goes_on_and_is_kept_for_the_log(asking):
    server = served(asking, lambda r: r.message != "match")
    try:
        assert not asking.stops(asking.exception("other"))
        assert asking.stops(asking.exception("match"))
        passed = server.take_passed()
        assert [r.message for r, _ in passed] == ["other"] and abs(passed[0][1] - time.time()) < 60
        assert server.take_passed() == [] and (server.answered, server.stopped) == (1, 1)
    finally:
        server.close()


def test_a_decision_that_fails_stops(asking):
    server = served(asking, lambda r: 1 / 0)
    try:
        assert asking.stops(asking.exception("m"))
        assert server.stopped == 1 and not server.take_passed()
    finally:
        server.close()


def test_after_close_the_stub_stops_asking(asking):
    server = served(asking, lambda r: True)
    assert not asking.stops(asking.exception("m"))
    server.close()
    assert asking.stops(asking.exception("m"))  # no listener: the trap, and the question off
    assert asking.field(va.ON) == 0


def test_only_the_target_may_connect(asking):
    """Another process that finds the abstract name is refused; the target's own connection is served."""
    server = served(asking, lambda r: True)
    try:
        probe = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
            f"s.connect({server.name!r})\n"
            "try:\n"
            "    s.send(b'x'*%d)\n"
            "    print(repr(s.recv(8)))\n"
            "except OSError as e:\n"
            "    print(type(e).__name__)\n" % va.REQUEST_SIZE
        )
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        assert other.stdout.strip() in ("b''", "ConnectionResetError", "BrokenPipeError"), other.stderr
        assert not asking.stops(asking.exception("m"))
        assert server.refused == 1 and server.answered == 1
    finally:
        server.close()


def test_what_waits_for_the_log_is_bounded(asking, monkeypatch):
    from pydbgauto.drivers.lldb import verdict_server

    monkeypatch.setattr(verdict_server, "MAX_KEPT", 2)
    server = served(asking, lambda r: True)
    try:
        for _ in range(3):
            assert not asking.stops(asking.exception("m"))
        assert len(server.take_passed()) == 2 and server.unlogged == 1 and server.answered == 3
    finally:
        server.close()
