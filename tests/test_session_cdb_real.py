"""The Session, ``watch`` and ``analyze`` with ``debugger="cdb"`` against a REAL debugger engine.

Marked ``cdb``. On Windows: a real cdb.exe. Elsewhere: the TEST BED in tests/cdb_testbed (not cdb.exe: a
console of this project's own over Microsoft's real dbgeng.dll and the real win-x64 sos.dll, under Wine,
built by scripts/setup; PYDBGAUTO_NO_WINE=1 skips it). The same scenarios run against the replay test double
in tests/test_session_cdb.py; here every line of debugger and SOS text is the engine's own. .NET 10 only:
under Wine 8.0, .NET 8 does not survive a second managed exception in one process (tests/drivers/
test_cdb_real.py has the one-exception .NET 8 test).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import pydbgauto as pda
from pydbgauto.errors import DebuggerTimeoutError, TargetExitedError
from pydbgauto.session import Session
from tests.cdb_testbed.testbed import Bed, SampleApp, bed_or_skip, clean_up

pytestmark = pytest.mark.cdb


@pytest.fixture
def bed() -> Iterator[Bed]:
    b = bed_or_skip()
    try:
        yield b
    finally:
        clean_up(b)


@pytest.fixture
def waiting_app(bed: Bed) -> Iterator[SampleApp]:
    app = bed.start_app("wait")
    assert app.wait_for_line("READY", 120), app.lines
    yield app
    app.end()


def _options(bed: Bed, **extra: Any) -> Dict[str, Any]:
    options: Dict[str, Any] = {"debugger": "cdb", "command_timeout": 120.0, "startup_timeout": 300.0}
    options.update(bed.driver_options())
    options.update(extra)
    return options


def _lives_on(app: SampleApp) -> None:
    """Detached with qd: the target runs, throws and catches on its own, and ends normally."""
    app.send("invalid-op")
    assert app.wait_for_line("OK invalid-op", 60), app.lines
    app.send("exit")
    assert app.proc.wait(60) == 0


def _stopped(bed: Bed, app: SampleApp, scenario: str = "invalid-op") -> Session:
    s = Session.attach(app.pid, **_options(bed))
    s.break_on_clr_exceptions()
    app.send(scenario)
    return s


def test_attach_by_pid_event_threads_stack_and_a_verified_dump(
    bed: Bed, waiting_app: SampleApp, tmp_path: Path
) -> None:
    s = _stopped(bed, waiting_app)
    try:
        assert s.pid == waiting_app.pid
        assert s.versions["debugger"] == "cdb" and s.versions["runtime"] == "coreclr"
        ev = s.wait_for_event(timeout=120)
        assert ev.kind == "first-chance" and ev.sequence == 1 and ev.error is None
        assert "CLR exception" in ev.description
        assert ev.exception is not None
        assert ev.exception.type == "System.InvalidOperationException"
        assert ev.exception.message == "The order queue timeout expired"
        assert ev.exception.hresult == 0x80131509
        assert ev.exception_address == ev.exception.address and ev.exception_address
        # the thread the app says it threw on is the event's thread (Wine's tids are Windows tids)
        throw = waiting_app.wait_for_line("THROW 1 ", 10)
        assert throw is not None and f"tid={ev.thread_id}" in throw
        assert ev.stack is not None and ev.stack.os_thread_id == ev.thread_id
        assert (
            ev.throw_site is not None
            and ev.throw_site.method == "ThrowingApp.Program.ThrowInvalidOperation()"
        )
        assert ev.throw_site.source_file is not None and ev.throw_site.source_file.endswith("Program.cs")
        assert ev.throw_site.line is not None and ev.throw_site.line > 0

        table = s.threads()
        assert table.thread_count is not None and table.thread_count >= 2
        mine = [t for t in table.threads if t.os_id == ev.thread_id]
        assert mine and mine[0].exception_type == "System.InvalidOperationException"
        assert mine[0].exception_address == ev.exception_address
        finalizer = [t for t in table.threads if t.special and "Finalizer" in t.special]
        assert finalizer
        other = s.stack(finalizer[0].os_id)  # ~~[0x<tid>]e !clrstack on that thread
        assert other.os_thread_id == finalizer[0].os_id
        again = s.stack(ev.thread_id)
        assert again.os_thread_id == ev.thread_id

        folder = tmp_path / "dumps"
        folder.mkdir()
        final = folder / "app.dmp"
        record = s.dump(str(final))
        assert record.path == str(final) and os.listdir(folder) == ["app.dmp"]  # renamed; no .partial left
        assert final.stat().st_mode & 0o777 == 0o600
        assert final.read_bytes()[:4] == b"MDMP" and record.size == final.stat().st_size > 1_000_000
        assert record.verified, record.verify_error  # a second cdb -z: thread and !pe type
        assert record.reader == "cdb -z"
        assert record.seen_thread_id == ev.thread_id
        assert record.seen_exception_type == "System.InvalidOperationException"
    finally:
        s.close()
    _lives_on(waiting_app)


def test_attach_by_name(bed: Bed, waiting_app: SampleApp) -> None:
    s = Session.attach(name="ThrowingApp.exe", **_options(bed))
    try:
        assert s.pid == waiting_app.pid
        s.break_on_clr_exceptions()
        waiting_app.send("custom")
        ev = s.wait_for_event(timeout=120)
        assert ev.kind == "first-chance" and ev.exception_type == "ThrowingApp.OrderRejectedException"
    finally:
        s.close()
    _lives_on(waiting_app)


def test_launch_first_chance_then_crash_then_exit(bed: Bed) -> None:
    with Session.launch([bed.app(), "crash"], **_options(bed)) as s:
        assert s.versions["sos"].startswith(".load ")
        s.break_on_clr_exceptions()
        first = s.wait_for_event(timeout=120)
        assert first.kind == "first-chance"
        assert (
            first.exception is not None and first.exception.message == "Unhandled: the service is going down"
        )
        assert first.throw_site is not None and first.throw_site.method == "ThrowingApp.Program.Crash()"
        # .NET 10 raises the same exception object once more at first chance (from the runtime's unhandled
        # exception path, [SoftwareExceptionFrame] right above Crash()), then comes the second chance.
        # (seen under Wine; on Windows the same is expected, but either way is accepted here)
        second = s.wait_for_event(timeout=120)
        if second.kind == "first-chance":
            assert second.exception_address == first.exception_address
            second = s.wait_for_event(timeout=120)
        assert second.kind == "second-chance"
        assert second.exception_address == first.exception_address
        assert second.exception_type == "System.InvalidOperationException"
        kinds: List[str] = []
        while True:  # Under Wine a second round of first/second chance comes before the exit
            ev = s.wait_for_event(timeout=120)
            kinds.append(ev.kind)
            if ev.kind == "exit":
                break
            assert len(kinds) < 10, kinds
        assert ev.exit_status in (0xE0434352, 0x80131506)  # Windows / Wine
        with pytest.raises(TargetExitedError):
            s.wait_for_event(timeout=30)


def test_timeout_breaks_in_then_the_session_goes_on(bed: Bed, waiting_app: SampleApp) -> None:
    s = Session.attach(waiting_app.pid, **_options(bed))
    try:
        s.break_on_clr_exceptions()
        t0 = time.monotonic()
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(timeout=2)
        assert time.monotonic() - t0 < 30
        assert "ThreadCount:" in s.sos("threads")  # in step again
        waiting_app.send("inner")
        ev = s.wait_for_event(timeout=120)
        assert ev.exception_type == "System.FormatException"
    finally:
        s.close()
    _lives_on(waiting_app)


def test_keyboard_interrupt_while_waiting_leaves_the_target_running(bed: Bed, waiting_app: SampleApp) -> None:
    s = Session.attach(waiting_app.pid, **_options(bed))
    s.break_on_clr_exceptions()
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.wait_for_event(timeout=None)  # the target waits for input: only Ctrl-C ends this
    finally:
        timer.cancel()
    driver = s.driver
    assert driver._console is not None and driver._console.ended  # type: ignore[attr-defined]
    s.close()  # nothing more to do, and no error
    _lives_on(waiting_app)


def test_watch_captures_the_matching_exception(bed: Bed, tmp_path: Path) -> None:
    """watch(): the type predicate (decided in Python: the cdb driver has no debugger-side predicate agent;
    its in-engine !soe filter is tested in tests/drivers/test_cdb_real.py), dump, cdb -z check, record."""
    from pydbgauto.watching import watch

    dumps = tmp_path / "dumps"
    dumps.mkdir()
    options = _options(bed)
    debugger = options.pop("debugger")
    # 'first-chance' throws an InvalidOperationException, an OrderRejectedException and a FormatException
    # before the ApplicationException.
    result = watch(
        launch=[bed.app(), "first-chance"],
        when=pda.exception_type("System.ApplicationException"),
        dump_dir=str(dumps),
        debugger=debugger,
        session_options=options,
        timeout=180,
    )
    assert result.ended == "max-dumps", result
    assert result.events_seen == 4 and result.matched == 1
    assert [e.exception_type for e, _ in result.decisions] == [
        "System.InvalidOperationException",
        "ThrowingApp.OrderRejectedException",
        "System.FormatException",
        "System.ApplicationException",
    ]
    capture = result.captures[0]
    assert capture.exception is not None and capture.exception.type == "System.ApplicationException"
    assert capture.exception.message == "Payment failed"
    assert capture.dump is not None and capture.dump.verified, capture.dump
    assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
    assert capture.record_path and os.path.exists(capture.record_path)


def test_analyze_a_dump_with_the_cdb_reader(
    bed: Bed, waiting_app: SampleApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _stopped(bed, waiting_app, "custom")
    try:
        ev = s.wait_for_event(timeout=120)
        record = s.dump(str(tmp_path / "custom.dmp"), verify=False)
    finally:
        s.close()
    # analyze() finds cdb and SOS as a user's machine would: CDB_PATH, and a dotnet-sos style install
    monkeypatch.setenv("CDB_PATH", bed.cdb)
    if bed.testbed is not None:
        home = tmp_path / "home"
        (home / ".dotnet").mkdir(parents=True)
        (home / ".dotnet" / "sos").symlink_to(os.path.dirname(bed.testbed.sos))
        monkeypatch.setenv("USERPROFILE", str(home))
        monkeypatch.setenv("_NT_SYMBOL_PATH", bed.testbed.symbol_path())
    analysis = pda.analyze(record.path, reader="cdb", timeout=300)
    assert analysis.reader == "cdb -z"
    assert ev.thread_id in [t.os_id for t in analysis.threads.threads]
    found = [e for e in analysis.exceptions if e.exception.type == "ThrowingApp.OrderRejectedException"]
    assert found, analysis
