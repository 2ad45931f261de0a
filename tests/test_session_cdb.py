"""The Session API end to end with ``debugger="cdb"``, against the replay TEST DOUBLE.

``cdb_path`` points at tests/doubles/cdb_replay_double.py, which answers from transcripts written
from documentation (tests/transcripts/cdb-replay/, not recorded). These tests show that the Session
and the cdb driver fit together (attach by pid and by name, launch, events with parsed ``!pe`` and
``!clrstack``, dumps, time-outs, Ctrl-C, refused input); they make no claim about real cdb.exe,
which only the ``@pytest.mark.cdb`` tests on Windows check.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from tests.doubles.cdb_replay_log import DoubleLog, process_gone
from pydbgauto.errors import DebuggerTimeoutError, TargetExitedError, UnsafeInputError
from pydbgauto.session import Session

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the replay double is a POSIX script")

ROOT = Path(__file__).resolve().parents[1]
DOUBLE = ROOT / "tests" / "doubles" / "cdb_replay_double.py"
TRANSCRIPTS = ROOT / "tests" / "transcripts" / "cdb-replay"

EXCEPTION_ADDRESS = 0x1D2A4C0F2E8
ATTACH_PID = 0x1A2C
ATTACH_THREAD = 0x2D00


class Replay(DoubleLog):
    """Runs Sessions on the double with the given transcripts and reads the double's log."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "double.log"
        self.sessions: List[Session] = []
        monkeypatch.setenv("CDB_REPLAY_LOG", str(self.log_path))
        monkeypatch.setenv("CDB_REPLAY_DUMP_SCENARIO", str(TRANSCRIPTS / "dump-net8.txt"))
        # No dotnet-sos install to find: the driver falls back to '.loadby sos coreclr'.
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
        monkeypatch.delenv("CDB_REPLAY_IGNORE_QUIT", raising=False)
        monkeypatch.delenv("CDB_REPLAY_CHUNK", raising=False)
        self.monkeypatch = monkeypatch

    def scenario(self, *transcripts: str) -> None:
        self.monkeypatch.setenv(
            "CDB_REPLAY_SCENARIO", os.pathsep.join(str(TRANSCRIPTS / t) for t in transcripts)
        )

    def options(self, **extra: Any) -> Dict[str, Any]:
        options: Dict[str, Any] = {
            "debugger": "cdb",
            "cdb_path": str(DOUBLE),
            "command_timeout": 10.0,
            "startup_timeout": 10.0,
            "resync_timeout": 5.0,
        }
        options.update(extra)
        return options

    def attach(self, *transcripts: str, **kwargs: Any) -> Session:
        self.scenario(*transcripts)
        if "name" not in kwargs:
            kwargs.setdefault("pid", ATTACH_PID)
        pid = kwargs.pop("pid", None)
        s = Session.attach(pid, **self.options(**kwargs))
        self.sessions.append(s)
        return s

    def launch(self, argv: List[str], *transcripts: str, **kwargs: Any) -> Session:
        self.scenario(*transcripts)
        s = Session.launch(argv, **self.options(**kwargs))
        self.sessions.append(s)
        return s

    def commands(self) -> List[str]:
        """The commands sent, without the .printf marker lines around each one."""
        return [c for c in self.sent() if not c.startswith(".printf")]

    def reopened(self) -> List[str]:
        return [e["z_in"] for e in self.log() if "z_in" in e and not e["z_in"].startswith(".printf")]


@pytest.fixture
def replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    r = Replay(tmp_path, monkeypatch)
    yield r
    for s in r.sessions:
        s.close()


def _assert_left_with_qd(replay: Replay) -> None:
    sent = replay.sent()
    assert sent[-1] == "qd"
    assert "q" not in sent and "qq" not in sent
    assert not any("q-sent" in str(e) for e in replay.log())
    assert process_gone(replay.double_pid())


# -- attach -----------------------------------------------------------------------------------


def test_attach_by_pid_first_chance_event(replay: Replay) -> None:
    with replay.attach("attach-net8.txt") as s:
        assert replay.argvs()[0][-2:] == ["-p", str(ATTACH_PID)]
        assert "-pd" in replay.argvs()[0]
        assert s.pid == ATTACH_PID
        assert s.versions["debugger"] == "cdb" and s.versions["runtime"] == "coreclr"
        assert s.versions["sos"] == ".loadby sos coreclr"
        s.break_on_clr_exceptions()
        ev = s.wait_for_event(timeout=10)
        assert ev.kind == "first-chance"
        assert ev.sequence == 1 and ev.pid == ATTACH_PID
        assert ev.thread_id == ATTACH_THREAD
        assert "CLR exception" in ev.description
        assert ev.error is None
        assert ev.exception is not None
        assert ev.exception.type == "System.InvalidOperationException"
        assert ev.exception.message == "The order queue timeout expired"
        assert ev.exception.hresult == 0x80131509
        assert ev.exception_address == EXCEPTION_ADDRESS
        assert ev.stack is not None and ev.stack.os_thread_id == ATTACH_THREAD
        methods = [f.method for f in ev.stack.frames if f.method]
        assert methods[0] == "ThrowingApp.Program.ThrowInvalidOperation()"
        assert ev.throw_site is not None and ev.throw_site.line == 96
        assert s.last_event is ev
    _assert_left_with_qd(replay)


def test_attach_by_name_uses_pn(replay: Replay) -> None:
    with replay.attach("attach-net8.txt", name="ThrowingApp.exe") as s:
        assert replay.argvs()[0][-2:] == ["-pn", "ThrowingApp.exe"]
        assert s.pid == ATTACH_PID  # read from '|.'
        s.break_on_clr_exceptions()
        ev = s.wait_for_event(timeout=10)
        assert ev.kind == "first-chance" and ev.exception_type == "System.InvalidOperationException"
    _assert_left_with_qd(replay)


def test_attach_by_name_refuses_a_hostile_name_before_starting_cdb(
    replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(UnsafeInputError):
        replay.attach("attach-net8.txt", name='x.exe" -c ".shell calc')
    assert replay.argvs() == []
    assert list(tmp_path.glob("*.cdbinit")) == []  # nor its init file (one was left behind before)


def test_sos_commands_use_the_bang_prefix(replay: Replay) -> None:
    with replay.attach("attach-net8.txt") as s:
        s.break_on_clr_exceptions()
        s.wait_for_event(timeout=10)
        assert s.sos("pe").startswith("Exception object: 000001d2a4c0f2e8")
        assert "!pe" in replay.commands()
        table = s.threads()
        assert "!threads" in replay.commands()
        assert table.thread_count == 2
        main = [t for t in table.threads if t.os_id == ATTACH_THREAD][0]
        assert main.exception_type == "System.InvalidOperationException"
        assert main.exception_address == EXCEPTION_ADDRESS
        assert [t.special for t in table.threads if t.os_id == 0x3B8C] == ["Finalizer"]


def test_stack_of_another_thread_runs_on_that_thread(replay: Replay) -> None:
    with replay.attach("attach-net8.txt") as s:
        s.break_on_clr_exceptions()
        ev = s.wait_for_event(timeout=10)
        assert "~~[0x2d00]e !clrstack" in replay.commands()  # the event's own stack, by thread id
        other = s.stack(0x3B8C)
        assert other.os_thread_id == 0x3B8C
        assert "~~[0x3b8c]e !clrstack" in replay.commands()
        assert ev.stack is not None and ev.stack.os_thread_id == ATTACH_THREAD


def test_exception_by_address_sends_0x(replay: Replay) -> None:
    with replay.attach("attach-net8.txt") as s:
        exc = s.exception(EXCEPTION_ADDRESS)
        assert exc is not None and exc.address == EXCEPTION_ADDRESS
        assert "!pe 0x1d2a4c0f2e8" in replay.commands()


# -- launch -----------------------------------------------------------------------------------


def test_launch_first_chance_then_crash_then_exit(replay: Replay, tmp_path: Path) -> None:
    sos = tmp_path / "sos.dll"
    sos.write_bytes(b"MZ")
    app = [r"C:\app\ThrowingApp.exe", "crash"]
    with replay.launch(app, "launch-net8.txt", sos_path=str(sos)) as s:
        argv = replay.argvs()[0]
        assert argv[-5:] == ["-2", "-noinh", "-hd", *app] and "-pd" in argv
        commands = replay.commands()
        # the module-load walk, then SOS from the given path
        assert commands.index("sxe ld") < commands.index("sxn ld") < commands.index(f".load {sos}")
        assert commands.count("g") == 2  # hostfxr, then coreclr
        assert s.pid == 0x1F00 and s.versions["sos"] == f".load {sos}"
        s.break_on_clr_exceptions()
        first = s.wait_for_event(timeout=10)
        assert first.kind == "first-chance" and first.thread_id == 0x1F04
        assert first.exception_type == "System.InvalidOperationException"
        assert (
            first.exception is not None and first.exception.message == "Unhandled: the service is going down"
        )
        assert first.throw_site is not None and first.throw_site.method == "ThrowingApp.Program.Crash()"
        second = s.wait_for_event(timeout=10)
        assert second.kind == "second-chance" and second.sequence == 2
        assert second.exception_address == first.exception_address == 0x21F8A40E6F0
        exited = s.wait_for_event(timeout=10)
        assert exited.kind == "exit" and exited.exit_status == 0xE0434352
        assert exited.exception is None
        with pytest.raises(TargetExitedError):
            s.wait_for_event(timeout=10)
    assert replay.sent()[-1] == "qd"
    assert "q" not in replay.sent()


def test_launch_passes_the_target_environment(replay: Replay, tmp_path: Path) -> None:
    sos = tmp_path / "sos.dll"
    sos.write_bytes(b"MZ")
    replay.launch(
        ["C:\\app\\ThrowingApp.exe", "crash"],
        "launch-net8.txt",
        sos_path=str(sos),
        env={"PYDBGAUTO_MARK": "1"},
    ).close()
    assert replay.argvs()  # started; the environment itself is the driver's business (replay tests)


# -- dumps ------------------------------------------------------------------------------------


def _stopped(replay: Replay, *transcripts: str) -> Session:
    s = replay.attach(*(transcripts or ("attach-net8.txt",)))
    s.break_on_clr_exceptions()
    s.wait_for_event(timeout=10)
    return s


def test_dump_goes_to_a_temporary_name_then_is_renamed(replay: Replay, tmp_path: Path) -> None:
    s = _stopped(replay)
    folder = tmp_path / "dumps"
    folder.mkdir()
    final = folder / "app.dmp"
    record = s.dump(str(final), verify=False)
    dumps = [c for c in replay.commands() if c.startswith(".dump")]
    assert len(dumps) == 1
    written = dumps[0][len('.dump /ma "') : -1]
    assert dumps[0] == f'.dump /ma "{written}"'
    assert os.path.dirname(written) == str(folder) and written != str(final)
    assert os.path.basename(written).startswith(".app.dmp.") and written.endswith(".partial")
    assert not os.path.exists(written)  # renamed away
    assert final.read_bytes().startswith(b"MDMP")  # what the double wrote
    assert record.path == str(final) and record.size == final.stat().st_size
    assert record.sha256 is not None and not record.verified
    assert final.stat().st_mode & 0o777 == 0o600
    assert os.listdir(folder) == ["app.dmp"]


@pytest.mark.parametrize(
    "overlay, message",
    [
        ("overlay-dump-denied.txt", "Access is denied"),
        ("overlay-dump-nofile.txt", "does not exist"),
        ("overlay-dump-empty.txt", "is empty"),
    ],
)
def test_dump_failure_leaves_nothing_behind(
    replay: Replay, tmp_path: Path, overlay: str, message: str
) -> None:
    from pydbgauto.errors import DumpError

    s = _stopped(replay, "attach-net8.txt", overlay)
    folder = tmp_path / "dumps"
    folder.mkdir()
    with pytest.raises(DumpError, match=message):
        s.dump(str(folder / "app.dmp"), verify=False)
    assert os.listdir(folder) == []


@pytest.mark.parametrize("name", ['a".dmp', "a;.shell calc.dmp", "a$$x.dmp", "a%TEMP%.dmp"])
def test_unsafe_dump_name_is_refused_before_anything_is_sent(
    replay: Replay, tmp_path: Path, name: str
) -> None:
    s = _stopped(replay)
    before = len(replay.sent())
    with pytest.raises(UnsafeInputError):
        s.dump(str(tmp_path / name), verify=False)
    assert len(replay.sent()) == before
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_dump_is_verified_by_reopening_it_with_cdb_z(replay: Replay, tmp_path: Path) -> None:
    s = _stopped(replay)
    final = tmp_path / "app.dmp"
    record = s.dump(str(final))
    assert record.verified, record.verify_error
    assert record.reader == "cdb -z"
    assert record.seen_thread_id == ATTACH_THREAD
    assert record.seen_exception_type == "System.InvalidOperationException"
    reopen = [a for a in replay.argvs() if "-z" in a]
    assert len(reopen) == 1 and reopen[0][-2:] == ["-z", str(final)]  # the final name, after the rename
    assert reopen[0][0] == "-noshell" and "-pd" not in reopen[0]
    assert replay.reopened()[-3:] == [".loadby sos coreclr", "!pe 0x1d2a4c0f2e8", "q"]
    assert "q" not in replay.sent()  # q only in the dump's own cdb


# -- the driver's verifier on its own (no Session change needed) ------------------------------


def test_driver_verify_dump_sees_thread_and_exception(replay: Replay, tmp_path: Path) -> None:
    s = _stopped(replay)
    record = s.dump(str(tmp_path / "app.dmp"), verify=False)
    verified = s.driver.verify_dump(record, s.last_event)  # type: ignore[attr-defined]
    assert verified.verified, verified.verify_error
    assert (verified.seen_thread_id, verified.seen_exception_type) == (
        ATTACH_THREAD,
        "System.InvalidOperationException",
    )


def test_driver_verify_dump_reports_a_wrong_thread(replay: Replay, tmp_path: Path) -> None:
    replay.monkeypatch.setenv(  # the driver copies the environment when it is made
        "CDB_REPLAY_DUMP_SCENARIO",
        os.pathsep.join(str(TRANSCRIPTS / t) for t in ("dump-net8.txt", "overlay-dump-other-thread.txt")),
    )
    s = _stopped(replay)
    record = s.dump(str(tmp_path / "app.dmp"), verify=False)
    verified = s.driver.verify_dump(record, s.last_event)  # type: ignore[attr-defined]
    assert not verified.verified
    assert verified.verify_error is not None and "0x3b8c" in verified.verify_error


def test_driver_verify_dump_reports_a_file_cdb_cannot_open(replay: Replay, tmp_path: Path) -> None:
    s = _stopped(replay)
    record = s.dump(str(tmp_path / "app.dmp"), verify=False)
    Path(record.path).write_bytes(b"not a dump")
    verified = s.driver.verify_dump(record, s.last_event)  # type: ignore[attr-defined]
    assert not verified.verified
    assert verified.verify_error is not None and "could not open" in verified.verify_error


# -- time-outs, Ctrl-C, leaving ---------------------------------------------------------------


def test_timeout_then_close_sends_qd(replay: Replay) -> None:
    s = replay.attach("attach-net8.txt", "overlay-hang.txt")
    s.break_on_clr_exceptions()
    t0 = time.monotonic()
    with pytest.raises(DebuggerTimeoutError):
        s.wait_for_event(timeout=0.5)
    assert time.monotonic() - t0 < 5
    # broke in: the session is in step again and answers
    assert s.sos("pe").startswith("Exception object:")
    s.close()
    _assert_left_with_qd(replay)


def test_keyboard_interrupt_while_waiting_leaves_with_qd(replay: Replay) -> None:
    s = replay.attach("attach-net8.txt", "overlay-hang.txt")
    s.break_on_clr_exceptions()
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.wait_for_event(timeout=None)
    finally:
        timer.cancel()
    _assert_left_with_qd(replay)
    s.close()  # nothing more to do, and no error
    assert replay.sent().count("qd") == 1


def test_close_twice_and_exception_inside_with(replay: Replay) -> None:
    with pytest.raises(RuntimeError):
        with replay.attach("attach-net8.txt") as s:
            s.break_on_clr_exceptions()
            raise RuntimeError("user code failed")
    s.close()
    _assert_left_with_qd(replay)


# -- refused input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [".shell dir", "!pe; .shell dir", "q", "qd", "g", ".dump /ma C:\\x.dmp", "$$>a< C:\\x.txt"]
)
def test_execute_refuses_dangerous_commands(replay: Replay, command: str) -> None:
    s = _stopped(replay)
    before = len(replay.sent())
    with pytest.raises(UnsafeInputError):
        s.execute(command)
    assert len(replay.sent()) == before


def test_execute_runs_a_plain_command(replay: Replay) -> None:
    s = _stopped(replay)
    assert s.execute("!clrstack").startswith("OS Thread Id: 0x2d00")


def test_watch_with_cdb_captures_a_first_chance_exception(replay: Replay, tmp_path: Path) -> None:
    """The whole job (predicate, policy, dump written and reopened with cdb -z, capture record) through the
    cdb driver and the replay double."""
    import pydbgauto as pda
    from pydbgauto.watching import watch

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    replay.scenario("attach-net8.txt")
    options = replay.options()
    debugger = options.pop("debugger")
    result = watch(
        pid=ATTACH_PID,
        when=pda.exception_type("System.InvalidOperationException"),
        dump_dir=str(dumps),
        debugger=debugger,
        session_options=options,
        timeout=30,
    )
    assert result.ended == "max-dumps"
    capture = result.captures[0]
    assert capture.exception is not None and capture.exception.message == "The order queue timeout expired"
    assert capture.dump is not None and capture.dump.verified, capture.dump
    assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
    assert capture.record_path and os.path.exists(capture.record_path)
    assert any(c.startswith(".dump /ma ") for c in replay.commands())
    assert replay.reopened(), "the dump was reopened with cdb -z"
    assert "q" not in replay.commands() and "qd" in replay.commands()


# -- the same Session on transcripts RECORDED from the real engine (tests/transcripts/cdb-engine) ------

ENGINE = ROOT / "tests" / "transcripts" / "cdb-engine"


def _recorded(name: str) -> str:
    return (ENGINE / name).read_text(encoding="utf-8")


def test_recorded_engine_attach_event_threads_and_verified_dump(replay: Replay, tmp_path: Path) -> None:
    """The double plays what Microsoft's engine printed (recorded through the cdb test bed under Wine):
    the Session reads the event, !pe, the throw site with its source line, !threads and a -z check from it.
    The expected values come from the goldens of the same recording, so a new recording needs no edit here."""
    from pydbgauto.sos import parse_events, parse_pe, parse_threads

    expected = parse_pe(_recorded("pe-cdb-net10-invalidop.txt"))
    assert expected is not None
    tid = parse_events(_recorded("events-cdb-net10-first-chance.txt"))[-1].tid
    finalizer = [
        t for t in parse_threads(_recorded("clrthreads-cdb-net10-invalidop.txt")).threads if t.special
    ][0]
    replay.monkeypatch.setenv("CDB_REPLAY_SCENARIO", str(ENGINE / "replay-attach-net10.txt"))
    replay.monkeypatch.setenv("CDB_REPLAY_DUMP_SCENARIO", str(ENGINE / "replay-dump-net10.txt"))
    sos = tmp_path / "sos.dll"
    sos.write_bytes(b"MZ")
    s = Session.attach(0x20, **replay.options(sos_path=str(sos)))
    replay.sessions.append(s)
    assert s.versions["cdb"] == "10.0.29507.1001 AMD64"  # the engine's own banner
    s.break_on_clr_exceptions()
    ev = s.wait_for_event(timeout=10)
    assert ev.kind == "first-chance" and ev.thread_id == tid
    assert (
        ev.exception is not None and ev.exception.type == expected.type == "System.InvalidOperationException"
    )
    assert ev.exception_address == expected.address
    assert ev.throw_site is not None and ev.throw_site.method == "ThrowingApp.Program.ThrowInvalidOperation()"
    assert ev.throw_site.line is not None and ev.throw_site.source_file is not None
    assert ev.throw_site.source_file.endswith("Program.cs")
    table = s.threads()
    assert [t.exception_address for t in table.threads if t.os_id == tid] == [expected.address]
    no_exception = s.execute("!pe", thread_id=finalizer.os_id)
    assert no_exception.strip() == "There is no current managed exception on this thread"
    record = s.dump(str(tmp_path / "app.dmp"))
    assert record.verified, record.verify_error
    assert (record.seen_thread_id, record.seen_exception_type) == (tid, expected.type)
    s.close()
    _assert_left_with_qd(replay)


def test_recorded_engine_launch_crash_to_the_end(replay: Replay, tmp_path: Path) -> None:
    """Session.launch through the module-load walk, .load <sos>, and an unhandled exception to the process's
    exit, on what the real engine printed (the recording's title line lists the events it saw)."""
    text = _recorded("replay-launch-net10.txt")
    recorded_kinds = text.splitlines()[3].split(": ", 1)[1].split()
    replay.monkeypatch.setenv("CDB_REPLAY_SCENARIO", str(ENGINE / "replay-launch-net10.txt"))
    sos = tmp_path / "sos.dll"
    sos.write_bytes(b"MZ")
    s = Session.launch([r"Z:\app\ThrowingApp.exe", "crash"], **replay.options(sos_path=str(sos)))
    replay.sessions.append(s)
    commands = replay.commands()
    assert commands.index("sxe ld") < commands.index("sxn ld") < commands.index(f".load {sos}")
    s.break_on_clr_exceptions()
    events = []
    with pytest.raises(TargetExitedError):
        while len(events) < 20:
            events.append(s.wait_for_event(timeout=10))
    assert [e.kind for e in events] == recorded_kinds
    assert (
        recorded_kinds[0] == "first-chance"
        and "second-chance" in recorded_kinds
        and recorded_kinds[-1] == "exit"
    )
    exceptions = [e for e in events if e.kind != "exit"]
    assert {e.exception_type for e in exceptions} == {"System.InvalidOperationException"}
    assert len({e.exception_address for e in exceptions}) == 1  # one object, every time
    assert (
        exceptions[0].throw_site is not None
        and exceptions[0].throw_site.method == "ThrowingApp.Program.Crash()"
    )
    assert events[-1].exit_status == 0x80131506  # Wine's exit code for an unhandled exception
    s.close()
    assert replay.sent()[-1] == "qd"
