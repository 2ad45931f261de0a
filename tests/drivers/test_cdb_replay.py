"""The cdb driver against the replay TEST DOUBLE (tests/doubles/cdb_replay_double.py).

The double answers from transcripts written from documentation (tests/transcripts/cdb-replay/,
not recorded), so these tests show that the driver handles the documented protocol: command
line, framing, stop classification, SOS selection, dump replies, time-out and resync, leaving
with qd, and the injection guards. They say nothing about how a real cdb.exe behaves; the
``@pytest.mark.cdb`` tests in test_cdb_real.py do.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.doubles.cdb_replay_log import DoubleLog, process_gone
from pydbgauto.drivers.base import Driver, StopKind, Target
from pydbgauto.drivers.cdb import CdbDriver
from pydbgauto.errors import (
    DebuggerDiedError,
    DebuggerError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DumpError,
    NotDotnetError,
    SosError,
    TargetExitedError,
    UnsafeInputError,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the replay double is a POSIX script")

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "tests" / "doubles" / "cdb_replay_double.py"
TRANSCRIPTS = ROOT / "tests" / "transcripts" / "cdb-replay"


class Replay(DoubleLog):
    """Builds a CdbDriver that runs the double on the given transcripts, and reads its log."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "double.log"
        self.drivers: list[CdbDriver] = []

    def driver(self, *transcripts: str, target: Target | None = None, **kwargs: Any) -> CdbDriver:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp_path / "home"),  # no dotnet-sos install to find
            "CDB_REPLAY_SCENARIO": os.pathsep.join(str(TRANSCRIPTS / t) for t in transcripts),
            "CDB_REPLAY_LOG": str(self.log_path),
        }
        env.update(kwargs.pop("extra_env", {}))
        kwargs.setdefault("command_timeout", 10.0)
        kwargs.setdefault("startup_timeout", 10.0)
        kwargs.setdefault("resync_timeout", 5.0)
        d = CdbDriver(target or Target(pid=0x1A2C), cdb_path=str(DOUBLE), env=env, **kwargs)
        self.drivers.append(d)
        return d

    def argv(self) -> list[str]:
        return [e["argv"] for e in self.log() if "argv" in e][0]


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[Replay]:
    r = Replay(tmp_path)
    yield r
    for d in r.drivers:
        d.close()


# -- starting, the command line ---------------------------------------------------------------


def test_attach_by_pid_command_line_and_setup(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    argv = replay.argv()
    assert argv[:4] == ["-pd", "-noshell", "-cf", argv[3]]
    assert os.path.getsize(argv[3]) == 0  # the empty -cf file
    assert argv[4:7] == ["-lines", "-y", "srv*" + argv[6].split("*", 1)[1]]
    assert argv[-2:] == ["-p", str(0x1A2C)]
    sent = replay.sent()
    assert ".loadby sos coreclr" in sent
    assert "sxe epr" in sent
    assert d.runtime == "coreclr"
    assert d.versions()["cdb"] == "10.0.26100.1 AMD64"
    assert d.sos_prefix == "!"
    assert isinstance(d, Driver)


def test_every_command_is_framed_by_start_and_end_printf_lines(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    replay.log_path.unlink()
    d.execute("!pe")
    sent = replay.sent()
    assert len(sent) == 3
    assert sent[0].startswith('.printf "%c@PDA-START ') and sent[2].startswith('.printf "%c@PDA-END ')
    assert sent[1] == "!pe"
    token = sent[0].split()[2][:16]
    assert token in sent[2]
    d.execute("!pe")
    assert token not in replay.sent()[3]  # a fresh token per command


def test_symbol_path_defaults_to_nt_symbol_path(replay: Replay) -> None:
    d = replay.driver(
        "attach-net8.txt", extra_env={"_NT_SYMBOL_PATH": r"srv*D:\sym*https://example.invalid/s"}
    )
    d.start()
    assert replay.argv()[6] == r"srv*D:\sym*https://example.invalid/s"


def test_attach_by_name_uses_pn_and_reads_pid(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", target=Target(name="ThrowingApp.exe"))
    d.start()
    assert replay.argv()[-2:] == ["-pn", "ThrowingApp.exe"]
    assert d.pid == 0x1A2C  # from '|.'


def test_launch_stops_at_runtime_load_then_loads_sos_from_path(replay: Replay, tmp_path: Path) -> None:
    sos = tmp_path / "sos.dll"
    sos.write_bytes(b"MZ")
    d = replay.driver(
        "launch-net8.txt", target=Target(argv=(r"C:\app\ThrowingApp.exe", "crash")), sos_path=str(sos)
    )
    d.start()
    argv = replay.argv()
    assert argv[-5:] == ["-2", "-noinh", "-hd", r"C:\app\ThrowingApp.exe", "crash"]
    assert "-pd" in argv
    sent = replay.sent()
    assert sent.index("sxe ld") < sent.index("sxn ld") < sent.index(f".load {sos}")
    assert d.runtime == "coreclr" and d.pid == 0x1F00
    d.arm_clr_exceptions()
    first = d.resume(10)
    assert first.kind is StopKind.FIRST_CHANCE and first.thread_id == 0x1F04
    second = d.resume(10)
    assert second.kind is StopKind.SECOND_CHANCE
    exited = d.resume(10)
    assert exited.kind is StopKind.EXIT and exited.exit_status == 0xE0434352
    assert d.resume(10).kind is StopKind.EXIT  # "No runnable debuggees"


def test_first_chance_stop_and_sos_commands(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", extra_env={"CDB_REPLAY_CHUNK": "3"})
    d.start()
    d.arm_clr_exceptions()
    assert [s for s in replay.sent() if s.startswith("sxe ")] == [
        "sxe epr",
        "sxe clr",
        "sxe e0434352",
        "sxe e0434f4d",
    ]
    stop = d.resume(10)
    assert stop.kind is StopKind.FIRST_CHANCE
    assert stop.thread_id == 0x2D00
    assert "CLR exception" in stop.description
    pe = d.execute("!pe")
    assert pe.splitlines()[0] == "Exception object: 000001d2a4c0f2e8"
    assert "0:000>" not in pe and "@@PDA" not in pe
    stack = d.execute("!clrstack")
    assert "ThrowingApp.Program.ThrowInvalidOperation()" in stack


def test_execute_on_a_thread_uses_tilde_e(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    text = d.execute("!clrstack", thread_id=0x3B8C)
    assert text.startswith("OS Thread Id: 0x3b8c (2)")
    assert "~~[0x3b8c]e !clrstack" in replay.sent()
    with pytest.raises(UnsafeInputError):
        d.execute("!pe; .shell calc", thread_id=0x3B8C)


def test_reply_cleaning_prompts_symbol_noise_and_code_page(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", "overlay-noisy.txt")
    d.start()
    text = d.execute("!clrstack")
    assert "ThrowingApp.Program.ThrowInvalidOperation() [C:" in text  # the interrupted line is whole again
    assert "*** WARNING" not in text
    assert not any(line.startswith("0:000>") for line in text.splitlines())
    assert "Caf\ufffd" in text  # a cp1252 byte that is not UTF-8 is replaced, not fatal


# -- dumps ------------------------------------------------------------------------------------


def test_dump_success_checks_the_file(replay: Replay, tmp_path: Path) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    path = tmp_path / "out" / "t.dmp"
    path.parent.mkdir()
    d.write_dump(str(path), 10)
    assert path.stat().st_size > 0
    assert f'.dump /ma "{path}"' in replay.sent()


@pytest.mark.parametrize(
    "overlay, message",
    [
        ("overlay-dump-denied.txt", "Access is denied"),
        ("overlay-dump-nofile.txt", "does not exist"),
        ("overlay-dump-empty.txt", "is empty"),
    ],
)
def test_dump_failures(replay: Replay, tmp_path: Path, overlay: str, message: str) -> None:
    d = replay.driver("attach-net8.txt", overlay)
    d.start()
    with pytest.raises(DumpError, match=message):
        d.write_dump(str(tmp_path / "t.dmp"), 10)


def test_dump_refuses_existing_and_unsafe_paths(replay: Replay, tmp_path: Path) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    existing = tmp_path / "old.dmp"
    existing.write_bytes(b"keep")
    with pytest.raises(DumpError, match="already exists"):
        d.write_dump(str(existing), 10)
    assert existing.read_bytes() == b"keep"
    before = len(replay.sent())
    for bad in [
        str(tmp_path / 'a";.shell calc;".dmp'),
        "relative.dmp",
        str(tmp_path / "a\n.dmp"),
        "/tmp/$$x.dmp",
    ]:
        with pytest.raises(UnsafeInputError):
            d.write_dump(bad, 10)
    assert len(replay.sent()) == before  # nothing was sent


# -- time limits, break-in, resync ------------------------------------------------------------


def test_resume_timeout_breaks_in_and_resyncs(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", "overlay-hang.txt")
    d.start()
    t0 = time.monotonic()
    with pytest.raises(DebuggerTimeoutError, match="stopped again"):
        d.resume(0.5)
    assert time.monotonic() - t0 < 5
    # In step again: the next reply is the right one.
    assert d.execute("!pe").startswith("Exception object:")
    assert d.execute(".lastevent").startswith("Last event: 1a2c.2f44: Break instruction")


def test_command_timeout_cancels_and_resyncs(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", "overlay-hang.txt")
    d.start()
    with pytest.raises(DebuggerTimeoutError):
        d.execute("!dumpheap -stat", 0.3)
    assert d.execute("!pe").startswith("Exception object:")


def test_no_prompt_at_startup_is_a_timeout_and_cdb_is_ended(replay: Replay, tmp_path: Path) -> None:
    transcript = tmp_path / "silent.txt"
    transcript.write_text("# test double only\n=== startup [no-prompt]\nMicrosoft (R) Windows Debugger\n")
    d = replay.driver(str(transcript), startup_timeout=1.0)
    with pytest.raises(DebuggerTimeoutError, match="no prompt"):
        d.start()
    assert d._console is not None
    pid = d._console.transport.pid
    assert pid is not None and process_gone(pid)


# -- errors -----------------------------------------------------------------------------------


def test_cannot_attach_to_an_exiting_process(replay: Replay) -> None:
    d = replay.driver("cannot-attach.txt", target=Target(pid=4242))
    with pytest.raises(TargetExitedError, match="4242"):
        d.start()


def test_native_process_is_not_dotnet_and_is_left(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", "overlay-no-runtime.txt")
    with pytest.raises(NotDotnetError):
        d.start()
    assert replay.sent()[-1] == "qd"


def test_sos_load_failure(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", "overlay-sos-fails.txt")
    with pytest.raises(SosError, match="dotnet-sos"):
        d.start()
    assert replay.sent()[-1] == "qd"


def test_cdb_dying_mid_command(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt", "overlay-die.txt")
    d.start()
    with pytest.raises(DebuggerDiedError):
        d.execute("!pe")
    with pytest.raises(DebuggerError):
        d.execute("!clrstack")


def test_missing_cdb_says_where_it_looked(tmp_path: Path) -> None:
    d = CdbDriver(Target(pid=1), cdb_path=str(tmp_path / "nope" / "cdb.exe"), env={"PATH": str(tmp_path)})
    with pytest.raises(DebuggerNotFoundError, match="Debugging Tools for Windows") as e:
        d.start()
    assert str(tmp_path / "nope") in str(e.value)


# -- leaving ----------------------------------------------------------------------------------


def test_close_sends_qd_never_q(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    d.arm_clr_exceptions()
    d.resume(10)
    d.close()
    sent = replay.sent()
    assert sent[-1] == "qd"
    assert "q" not in sent and "qq" not in sent
    assert not any("q-sent" in str(e) for e in replay.log())
    assert process_gone(replay.double_pid())


def test_q_is_refused_in_attach_mode_even_when_dangerous_is_allowed(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    with pytest.raises(UnsafeInputError):
        d.execute("q", allow_dangerous=True)
    with pytest.raises(UnsafeInputError):
        d.execute("q")
    assert "q" not in replay.sent()


def test_keyboard_interrupt_during_resume_leaves_with_qd(
    replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = replay.driver("attach-net8.txt", "overlay-hang.txt")
    d.start()
    assert d._console is not None
    console = d._console

    def interrupted(*args: Any, **kwargs: Any) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(console, "_wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        d.resume(10)
    assert replay.sent()[-1] == "qd"
    assert console.ended


# -- injection guards -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ".shell cmd /c calc",
        "!pe; .shell calc",
        "!pe\n.shell calc",
        "$$>a< C:\\evil.txt",
        ".create calc.exe",
        ".kill",
        "g",
        "qd",
        ".dump /ma C:\\x.dmp",
        ".foreach (x {lm}) { .shell echo x }",
        "~*e .shell calc",
        '.echo "@@PDA-END 0123456789abcdef ok@@"',
    ],
)
def test_execute_refuses_dangerous_commands(replay: Replay, command: str) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    before = len(replay.sent())
    with pytest.raises(UnsafeInputError):
        d.execute(command)
    assert len(replay.sent()) == before


def test_allow_dangerous_lets_a_command_through_but_never_a_newline(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    d.execute("sxe av", allow_dangerous=True)
    assert "sxe av" in replay.sent()
    with pytest.raises(UnsafeInputError):
        d.execute("!pe\nqd", allow_dangerous=True)


def test_type_filter_is_pushed_into_cdb(replay: Replay) -> None:
    d = replay.driver("attach-net8.txt")
    d.start()
    d.set_type_filter(
        ["System.InvalidOperationException", "ThrowingApp.OrderRejectedException"], derived=True
    )
    sent = [s for s in replay.sent() if s.startswith("sxe -c")]
    assert len(sent) == 3 and sent[0].endswith(" clr")
    assert (
        "!soe -derived System.InvalidOperationException 1;!soe -derived ThrowingApp.OrderRejectedException 2"
        in sent[0]
    )
    assert ".if((@$t1|@$t2)==0) {g}" in sent[0]
    with pytest.raises(UnsafeInputError):
        d.set_type_filter(['System.Exception"; .shell calc; "'], derived=False)
    d.set_type_filter([], derived=False)
    assert replay.sent()[-3:-1] == ['sx- -c "" e0434352', 'sx- -c "" e0434f4d']
