"""One cdb console (framing, time-out and resync, leaving) against the replay TEST DOUBLE
(tests/doubles/cdb_replay_double.py), with no driver and no target on top; and the start-up
failures it maps from cdb's words. What the double answers is written from documentation
(tests/transcripts/cdb-replay/), not recorded."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from pydbgauto.drivers.cdb_console import CdbConsole, _startup_failure
from pydbgauto.drivers.cdb_transport import PipeTransport
from pydbgauto.errors import (
    ConfigurationError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerTimeoutError,
    NoSuchProcessError,
    TargetExitedError,
)
from tests.doubles.cdb_replay_log import DoubleLog, process_gone

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "doubles" / "cdb_replay_double.py"
TRANSCRIPTS = ROOT / "tests" / "transcripts" / "cdb-replay"

_posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the replay double is a POSIX script")


class Consoles(DoubleLog):
    def __init__(self, tmp_path: Path) -> None:
        self.log_path = tmp_path / "double.log"
        self.made: list[CdbConsole] = []

    def start(self, *transcripts: str, ignore_quit: bool = False) -> CdbConsole:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CDB_REPLAY_SCENARIO": os.pathsep.join(str(TRANSCRIPTS / t) for t in transcripts),
            "CDB_REPLAY_LOG": str(self.log_path),
        }
        if ignore_quit:
            env["CDB_REPLAY_IGNORE_QUIT"] = "1"
        console = CdbConsole(PipeTransport(), resync_timeout=5.0)
        self.made.append(console)
        console.start([str(DOUBLE), "-pd", "-p", "6700"], env, None, 10.0)
        return console


@pytest.fixture
def consoles(tmp_path: Path) -> Iterator[Consoles]:
    c = Consoles(tmp_path)
    yield c
    for console in c.made:
        if not console.ended:
            console.kill()


@_posix_only
def test_start_returns_the_banner_and_run_returns_the_framed_reply(consoles: Consoles) -> None:
    console = consoles.start("attach-net8.txt")
    assert "Microsoft (R) Windows Debugger" in console.banner
    assert console.run(["!pe"], 10.0, what="!pe").startswith("Exception object:")
    sent = consoles.sent()
    assert sent[-3].startswith('.printf "%c@PDA-START ') and sent[-1].startswith('.printf "%c@PDA-END ')
    assert sent[-2] == "!pe"


@_posix_only
def test_a_time_out_breaks_in_resyncs_and_the_next_reply_is_its_own(consoles: Consoles) -> None:
    console = consoles.start("attach-net8.txt", "overlay-hang.txt")
    with pytest.raises(DebuggerTimeoutError, match="broke in"):
        console.run(["!dumpheap -stat"], 0.3, what="!dumpheap")
    assert console.broken is None
    assert console.run(["!pe"], 10.0, what="!pe").startswith("Exception object:")


@_posix_only
def test_cdb_dying_mid_command_ends_the_console(consoles: Consoles) -> None:
    console = consoles.start("attach-net8.txt", "overlay-die.txt")
    with pytest.raises(DebuggerDiedError, match="ended unexpectedly"):
        console.run(["!pe"], 10.0, what="!pe")
    assert console.ended
    with pytest.raises(DebuggerError):
        console.run(["!clrstack"], 10.0, what="!clrstack")


@_posix_only
def test_quit_detached_sends_qd_and_ends_a_hung_cdb(consoles: Consoles) -> None:
    console = consoles.start("attach-net8.txt")
    assert console.quit_detached() == 0 and console.ended
    assert consoles.sent()[-1] == "qd"

    hung = consoles.start("attach-net8.txt", ignore_quit=True)
    pid = hung.transport.pid
    assert hung.quit_detached(timeout=0.3) is None  # asked, broke in, asked again, then ended the tree
    assert consoles.sent().count("qd") == 3
    assert pid is not None and process_gone(pid)


def test_startup_failures_say_what_cdb_meant() -> None:
    assert isinstance(_startup_failure("Cannot debug pid 4242, NTSTATUS 0xC000010A", ""), TargetExitedError)
    bitness = _startup_failure("Cannot debug pid 12, NTSTATUS 0xC00000BB", "")
    assert isinstance(bitness, ConfigurationError) and "x86 cdb" in str(bitness)
    other = _startup_failure("Cannot debug pid 12, NTSTATUS 0xC0000022", "")
    assert isinstance(other, NoSuchProcessError) and "0xC0000022" in str(other)
    assert isinstance(_startup_failure("", "Illegal process id"), NoSuchProcessError)
    died = _startup_failure("some text", "")
    assert type(died) is DebuggerDiedError and "before its first prompt" in str(died)
