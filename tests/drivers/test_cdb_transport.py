"""The transports under the cdb console, against real child processes (a small Python program stands
in for cdb: the transport moves bytes and knows nothing about cdb)."""

from __future__ import annotations

import os
import sys
from typing import Iterator, Optional

import pytest

from pydbgauto.drivers.cdb_transport import PipeTransport, make_transport
from pydbgauto.errors import ConfigurationError, DebuggerNotFoundError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the child programs use POSIX signals")

# Prints a prompt with no newline, echoes each line it reads, says so on SIGINT, exits 3 on "bye".
ECHO = r"""
import signal, sys
signal.signal(signal.SIGINT, lambda *a: (sys.stdout.write("INT\n"), sys.stdout.flush()))
sys.stderr.write("on stderr\n"); sys.stderr.flush()
sys.stdout.write("0:000> "); sys.stdout.flush()
for line in sys.stdin:
    if line.strip() == "bye":
        sys.exit(3)
    sys.stdout.write("got " + line); sys.stdout.flush()
"""


@pytest.fixture
def pipe() -> Iterator[PipeTransport]:
    t = PipeTransport()
    yield t
    t.kill_tree()


def read_until(t: PipeTransport, wanted: str, limit: float = 30.0) -> Optional[str]:
    """Everything read until ``wanted`` shows (None if the stream ended first)."""
    text = ""
    for _ in range(int(limit / 0.5)):
        chunk = t.read(0.5)
        if chunk is None:
            return None
        text += chunk
        if wanted in text:
            return text
    raise AssertionError(f"{wanted!r} did not come; read {text!r}")


def test_pipes_read_without_newlines_write_and_interrupt(pipe: PipeTransport) -> None:
    pipe.start([sys.executable, "-c", ECHO], dict(os.environ), None)
    assert pipe.pid is not None and pipe.pid > 0
    assert read_until(pipe, "0:000> ") is not None  # a prompt has no newline: raw bytes, not lines
    pipe.write("hello\n")
    assert "got hello" in (read_until(pipe, "got hello") or "")
    pipe.interrupt()  # POSIX: SIGINT, for the replay double
    assert "INT" in (read_until(pipe, "INT") or "")
    assert "on stderr" in pipe.stderr_text()
    pipe.write("bye\n")
    assert pipe.wait(30) == 3
    assert read_until(pipe, "never printed") is None  # the stream ends with the process
    assert pipe.read(0) is None  # and stays ended


def test_pipes_decode_with_the_given_code_page() -> None:
    pipe = PipeTransport("cp1252")  # cdb prints in the console's code page on Windows
    try:
        pipe.start(
            [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'caf\\xe9 0:000> ')"], {}, None
        )
        assert "café 0:000> " in (read_until(pipe, "0:000> ") or "")
    finally:
        pipe.kill_tree()


def test_kill_tree_ends_a_child_that_does_not_read(pipe: PipeTransport) -> None:
    pipe.start([sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ), None)
    assert pipe.wait(0.2) is None  # still running
    pipe.kill_tree()
    assert pipe.wait(30) is not None


def test_a_missing_program_is_debugger_not_found() -> None:
    with pytest.raises(DebuggerNotFoundError, match="cannot start"):
        PipeTransport().start(["/nonexistent/cdb.exe"], {}, None)


def test_make_transport_names() -> None:
    assert isinstance(make_transport("pipes"), PipeTransport)
    with pytest.raises(ConfigurationError, match="unknown transport 'telnet'"):
        make_transport("telnet")


def test_wexpect_transport_needs_wexpect() -> None:
    if os.name == "nt":
        pytest.skip("wexpect may be installed on Windows")
    with pytest.raises(DebuggerNotFoundError, match="wexpect"):
        make_transport("wexpect")
