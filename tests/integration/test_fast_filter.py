"""The in-target type filter (pydbgauto/drivers/lldb/inline_filter.py, docs/linux-fast-filter.md) on the real
lldb + SOS, .NET 8 and .NET 10: a type that cannot match stops the target once, then never; every matching
throw is still exactly one event, with a bare ``pe`` showing it; leaving (disarm, detach, the debugger's
death) puts the code back as in its file. Stops are counted from the agent's stats, never timed.

Target: FilterApp (``tests/integration/filterapp``), built here for both runtimes (or taken from
``PYDBGAUTO_FILTERAPP_DIR``/build-<runtime>/FilterApp).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import pydbgauto as pda
from pydbgauto import Session
from pydbgauto.errors import DebuggerTimeoutError
from pydbgauto.drivers.lldb.guardian import REPORT_ENV

from .conftest import APPS, WaitingApp, throw_lines, tracer_of
from .test_debugger_death import code_differences, int3_sites, read_reports

pytestmark = pytest.mark.lldb

HERE = os.path.dirname(os.path.abspath(__file__))
IOE = "System.InvalidOperationException"


@pytest.fixture(scope="session")
def filterapp_builds(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    return {"work": str(tmp_path_factory.mktemp("filterapp"))}


@pytest.fixture
def filterapp(runtime: str, filterapp_builds: Dict[str, str]) -> str:
    """FilterApp for this runtime: .NET 10 on the shared runtime, .NET 8 and 9 self-contained (as the
    samples: neither is installed)."""
    prebuilt = os.environ.get("PYDBGAUTO_FILTERAPP_DIR")
    if prebuilt:
        return os.path.join(prebuilt, f"build-{runtime}", "FilterApp")
    if runtime not in filterapp_builds:
        options = [] if runtime == "net10" else ["-r", "linux-x64", "--self-contained"]
        filterapp_builds[runtime] = publish_filterapp(filterapp_builds["work"], runtime, options)
    return filterapp_builds[runtime]


def publish_filterapp(work: str, runtime: str, options: List[str]) -> str:
    """``dotnet publish`` of FilterApp for ``runtime`` with ``options``, into ``work``; its executable."""
    dotnet = shutil.which("dotnet")
    if not dotnet:
        pytest.skip("no dotnet SDK to build FilterApp")
    source = os.path.join(work, "src")
    if not os.path.isdir(source):
        shutil.copytree(os.path.join(HERE, "filterapp"), source)
    out = os.path.join(work, runtime)
    build = subprocess.run(
        [dotnet, "publish", source, "-c", "Release", "-f", f"{runtime}.0", *options, "-o", out]
        + ["-nologo", "-v", "quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return os.path.join(out, "FilterApp")


@pytest.fixture
def app(filterapp: str) -> str:
    """conftest's ``waiting_app`` runs FilterApp here."""
    return filterapp


def stats(s: Session) -> Dict[str, Any]:
    return s.driver.stats()  # type: ignore[attr-defined, no-any-return]


def anonymous_mappings(pid: int) -> List[Tuple[str, str]]:
    """(range, permissions) of every mapping without a file."""
    with open(f"/proc/{pid}/maps") as f:
        return [(line.split()[0], line.split()[1]) for line in f if len(line.split()) == 5]


def command(app: WaitingApp, line: str, timeout: float = 120) -> None:
    """Send a command and wait for its OK (the target must be running)."""
    count = sum(1 for x in app.lines if x == f"OK {line}")
    app.send(line)
    deadline = time.monotonic() + timeout
    while sum(1 for x in app.lines if x == f"OK {line}") <= count:
        assert time.monotonic() < deadline and app.proc.poll() is None, app.lines[-3:]
        time.sleep(0.02)


@contextlib.contextmanager
def first_event(app: WaitingApp, predicate: Any, *lines: str) -> Iterator[Tuple[Session, Any]]:
    """Attach, arm, filter by ``predicate``, send ``lines``; the session and its first event (the target
    stopped there)."""
    with Session.attach(pid=app.pid) as s:
        s.break_on_clr_exceptions()
        assert s.set_filter(predicate)
        for line in lines:
            app.send(line)
        yield s, s.wait_for_event(120)


def test_a_sigurg_of_the_targets_own_is_passed_on_and_the_trap_still_decides(
    waiting_app, runtime, no_lldb_left
):
    """The stub's trap is a SIGURG the thread sends itself (filter_stub.py); one sent to the target from
    outside is no trap: passed on (the sample ignores it, as SIGURG's default), no event, and the filter
    goes on deciding at its trap."""
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        assert s.set_filter(pda.message_matches("^match$"))
        waiting_app.send("storm 20")
        with contextlib.suppress(DebuggerTimeoutError):
            s.wait_for_event(1.0)  # the storm, resumed by the filter
        os.kill(waiting_app.pid, signal.SIGURG)
        with contextlib.suppress(DebuggerTimeoutError):
            s.wait_for_event(1.0)  # the target's SIGURG: a stop, passed on, no event
        waiting_app.send("match")
        event = s.wait_for_event(120)
        assert event.exception is not None and event.exception.message == "match"
        counts = stats(s)
        assert counts["passed_sigurg"] == 1, counts
        if runtime != "net8":  # every storm throw stopped at the trap (on .NET 8 the prefilter let them by)
            assert len(s.take_filtered()) >= 20
    assert tracer_of(waiting_app.pid) == 0
    assert waiting_app.wait_for_line("OK match", 60)


# ----- no stop for a type that cannot match ----------------------------------------------------------


def test_a_non_matching_storm_stops_once_per_type(waiting_app, runtime, no_lldb_left):
    command(waiting_app, "storm 3000")  # warm: the throw path is tier-1 code before the attach
    with first_event(waiting_app, pda.exception_type(IOE), "storm 20000", "other", "other", "match") as (
        s,
        event,
    ):
        assert event.kind == "first-chance" and event.exception is not None and event.exception.type == IOE
        bare = s.exception()
        assert bare is not None and bare.address == event.exception_address
        counts = stats(s)
        inline = counts["inline_filter"]
        # One trap for KeyNotFoundException, one for FormatException, one for the match; nothing else.
        assert counts["filter_traps"] == 3, counts
        assert counts["frame_stops"] == 0
        assert inline["cached_types"] == 2
        assert inline["seen"] == 20000 + 2 + 1  # every throw passed the stub: counted, not stopped
        passed = {"System.Collections.Generic.KeyNotFoundException": 19999, "System.FormatException": 1}
        assert inline["passed"] == passed  # per type, the throws never stopped for
        assert counts["stops"] == (3 if runtime != "net8" else 4), counts  # .NET 8: + __cxa_rethrow
        waiting_app.send("storm 1000")
        waiting_app.send("match")
        event2 = s.wait_for_event(120)
        assert event2.exception_address != event.exception_address
        assert stats(s)["filter_traps"] == 4
    assert tracer_of(waiting_app.pid) == 0
    assert waiting_app.wait_for_line("OK match", 60)


# ----- exactly one event per matching throw ----------------------------------------------------------

CASES = {
    # case: (predicate, events, the same object every time)
    "created": (pda.exception_type(IOE), 0, False),
    "cross": (pda.exception_type(IOE), 1, False),
    "twice": (pda.exception_type(IOE), 2, True),
    "rethrow": (pda.exception_type(IOE), 2, True),
    "derived": (pda.exception_type(IOE, derived=True), 1, False),
    "index": (pda.exception_type("System.IndexOutOfRangeException"), 1, False),
    "cast": (pda.exception_type("System.InvalidCastException"), 1, False),
    "nullref": (pda.exception_type("System.NullReferenceException"), 1, False),
}


TYPES = {case: {IOE, "FilterApp.MatchedException"} for case in CASES}
TYPES.update(
    index={"System.IndexOutOfRangeException"},
    cast={"System.InvalidCastException"},
    nullref={"System.NullReferenceException"},
)


def run_to_exit(argv: List[str], predicate: Any) -> Tuple[List[Any], Dict[str, Any]]:
    """Every first-chance event of a launched run (with the bare pe's address at each), and the stats."""
    events = []
    counts: Dict[str, Any] = {}
    with Session.launch(argv) as s:
        s.break_on_clr_exceptions()
        s.set_filter(predicate)
        while True:
            event = s.wait_for_event(120)
            if event.kind == "exit":
                break
            assert event.kind == "first-chance", event
            bare = s.exception()
            events.append((event, bare.address if bare else None))
            counts = stats(s)  # while the target is there to read the stub's counter
    return events, counts


@pytest.mark.parametrize("case", sorted(CASES))
def test_exactly_one_event_per_matching_throw(filterapp, runtime, case, no_lldb_left):
    predicate, expected, same = CASES[case]
    events, counts = run_to_exit([filterapp, case], predicate)
    assert len(events) == expected, (events, counts)
    for event, bare in events:
        assert bare == event.exception_address  # a bare pe shows the exception at the stop
        assert event.exception is not None and event.exception.type in TYPES[case]
    if same:
        assert len({e.exception_address for e, _ in events}) == 1
    if case != "nullref" or runtime != "net8":  # .NET 8 faults are served by legacy_faults.py
        assert not events or counts["inline_filter"]["seen"] >= len(events), counts


def test_the_same_events_as_the_every_exception_mode(filterapp, runtime, monkeypatch, no_lldb_left):
    wanted = pda.exception_type(IOE, derived=True) | pda.exception_type("System.IndexOutOfRangeException")
    argv = [filterapp, "mixed", "3"]
    filtered, counts = run_to_exit(argv, wanted)
    every, _ = run_to_exit(argv, None)
    monkeypatch.setenv("PYDBGAUTO_NO_INLINE_FILTER", "1")  # the agent's breakpoint, as before the stub
    before, old_counts = run_to_exit(argv, None)
    assert "off" in old_counts["inline_filter"]
    expected = [IOE, "System.IndexOutOfRangeException", "FilterApp.MatchedException"] * 3
    assert [e.exception.type for e, _ in filtered] == expected
    assert [e.exception.type for e, _ in every if e.exception.type in expected] == expected
    assert [e.exception.type for e, _ in before] == [e.exception.type for e, _ in every]
    assert len(every) == 12
    # A type predicate that cannot decide everything (the union) still caches FormatException.
    assert counts["inline_filter"]["cached_types"] == 1, counts


@pytest.mark.parametrize("derived", [False, True])
def test_a_generic_types_own_name_matches_its_instantiations(filterapp, runtime, derived, no_lldb_left):
    events, counts = run_to_exit(
        [filterapp, "generic"], pda.exception_type("FilterApp.GenericFailure`1", derived)
    )
    names = [e.exception.type for e, _ in events]
    expected = ["FilterApp.GenericFailure`1[[System.Int32, System.Private.CoreLib]]"]
    expected.append("FilterApp.GenericFailure`1[[System.String, System.Private.CoreLib]]")
    assert names == expected + (["FilterApp.IntFailure"] if derived else []), (names, counts)


def test_a_target_that_starts_processes_is_not_hung_and_loses_no_throw(
    filterapp, runtime, tmp_path, no_lldb_left
):
    """FilterApp starts 60 children (.NET's vfork + exec), throwing after each, while short waits interrupt
    it again and again: an interrupt that meets a vfork left the child stopped and lldb hung (lldb skips
    its fork work at an interrupted stop; lost_forks.py does it). Every throw is an event, every child
    runs, the target exits."""
    n = 60
    events = []
    started = time.monotonic()
    with Session.launch([filterapp, "spawn", str(n)], output_dir=str(tmp_path), command_timeout=30) as s:
        s.break_on_clr_exceptions()
        s.set_filter(pda.exception_type("System.FormatException"))
        while time.monotonic() - started < 120:
            try:
                event = s.wait_for_event(0.01)  # each wait that runs out interrupts the target
            except DebuggerTimeoutError:
                continue
            if event.kind == "exit":
                break
            events.append(event)
        counts = stats(s)
    assert [e.exception.type for e in events] == ["System.FormatException"] * n, counts
    with open(tmp_path / "target.stdout") as f:
        assert f"SPAWNED {n}" in f.read()


# ----- leaving ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("leave", ["disarm", "detach"])
def test_leaving_puts_the_code_back_and_frees_the_pages(waiting_app, runtime, leave, no_lldb_left):
    before = anonymous_mappings(waiting_app.pid)
    assert code_differences(waiting_app.pid) == []
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        s.set_filter(pda.exception_type(IOE))
        inline = stats(s)["inline_filter"]
        assert (inline["stub"][2:], "r-xp") in [
            (r.split("-")[0].lstrip("0"), p) for r, p in anonymous_mappings(waiting_app.pid)
        ]
        assert not [p for _, p in anonymous_mappings(waiting_app.pid) if "w" in p and "x" in p]
        waiting_app.send("storm 500")
        waiting_app.send("match")
        event = s.wait_for_event(120)
        assert event.exception is not None and event.exception.type == IOE
        if leave == "disarm":
            s.stop_breaking_on_clr_exceptions()
            note = stats(s)["inline_filter"]["off"]
            if runtime != "net8":  # stopped at the trap, in the stub: moved to the function's entry
                assert f"{event.thread_id}" in note and "freed': True" in note, note
    assert tracer_of(waiting_app.pid) == 0
    assert waiting_app.wait_for_line("OK match", 60)
    command(waiting_app, "storm 500")
    command(waiting_app, "mixed 1")
    assert code_differences(waiting_app.pid) == []
    new_code = [m for m in anonymous_mappings(waiting_app.pid) if m not in before and "x" in m[1]]
    assert new_code == [], (new_code, inline)


@pytest.mark.parametrize(
    "when",
    [pda.exception_type("System.FormatException"), pda.message_matches("no repeat message says this")],
    ids=["type", "message"],
)
def test_the_debuggers_death_leaves_the_code_as_in_its_file(
    runtime, when, tmp_path, monkeypatch, no_lldb_left
):
    """lldb-server is killed while the target throws non-matching exceptions past the stub, running (by
    type; by message: on .NET 8 through the prefilter, whose threads go on with their registers back).
    The guardian stops the target, puts the funnel's bytes back, continues it. What stays: the stub's two
    anonymous pages (r-x and rw-, unreachable), never a writable+executable one."""
    report_path = str(tmp_path / "guardian.jsonl")
    monkeypatch.setenv(REPORT_ENV, report_path)
    app = WaitingApp(APPS[runtime])
    try:
        before = anonymous_mappings(app.pid)
        s = Session.attach(pid=app.pid)
        outcome: Dict[str, Any] = {}
        waiter: Optional[threading.Thread] = None
        warmed = False
        try:
            s.break_on_clr_exceptions()
            s.set_filter(when)  # the app throws no FormatException, no such message
            warmed = when.to_spec()["op"] == "message_matches" and runtime == "net8"
            if warmed:
                app.send("repeat 5")  # the field reader's checks, then the prefilter is on
                deadline = time.monotonic() + 60
                while not stats(s).get("inline_filter", {}).get("prefilter", {}).get("clauses"):
                    assert time.monotonic() < deadline, stats(s)["inline_filter"]
                    with contextlib.suppress(DebuggerTimeoutError):
                        s.wait_for_event(0.5, parse=False)
                assert app.wait_for_line("OK repeat 5", 60)
            sites = int3_sites(s)
            inline = stats(s)["inline_filter"]
            assert "entry" in inline, inline

            def wait() -> None:
                try:
                    outcome["event"] = s.wait_for_event(60, parse=False)
                except Exception as e:  # noqa: BLE001 - recorded, not judged
                    outcome["error"] = e

            waiter = threading.Thread(target=wait)
            waiter.start()
            app.send("repeat 20000")  # InvalidOperationException: cached after the first
            time.sleep(1.0)
            os.kill(tracer_of(app.pid), signal.SIGKILL)
            reports = read_reports(report_path)
        finally:
            if waiter is not None:
                waiter.join(60)
            s.close()
        assert reports, "the guardian did not report"
        report = reports[0]
        assert report["patches"]["restored"] == [inline["entry"]], (report, code_differences(app.pid))
        # lldb's breakpoint sites; the stub has none: a thread still in it, or one reaching its trap (a
        # SIGURG, ignored with no tracer) before the entry is restored, goes on
        assert inline["trap"] not in report["restored"], report
        assert report["unexpected"] == [] and set(report["restored"]) <= {f"{a:#x}" for a in sites}, report
        deadline = time.monotonic() + 5
        while tracer_of(app.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tracer_of(app.pid) == 0 and app.state() not in ("T", "t")
        assert code_differences(app.pid) == []
        assert app.wait_for_line("OK repeat 20000", 120)
        app.send("repeat 50")
        assert app.wait_for_line("OK repeat 50", 60)
        new = [m for m in anonymous_mappings(app.pid) if m not in before]
        assert not [p for _, p in new if "w" in p and "x" in p]
        assert (inline["stub"][2:], "r-xp") in [(r.split("-")[0].lstrip("0"), p) for r, p in new]
        assert len(throw_lines(app.finish())) == 20050 + (5 if warmed else 0)
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait()


def test_no_event_is_doubled_after_the_last_match(waiting_app, runtime, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        s.set_filter(pda.exception_type(IOE))
        waiting_app.send("match 3")
        for _ in range(3):
            assert s.wait_for_event(60).exception.type == IOE  # type: ignore[union-attr]
        waiting_app.send("other")
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(3)


def test_a_message_predicate_is_decided_from_the_object_without_sos(waiting_app, runtime, no_lldb_left):
    """A message predicate stops at every throw but reads the message from the object (after its first
    reads agreed with pe), not with an SOS pe per throw; the match is still the one with that message."""
    with first_event(waiting_app, pda.message_matches("^match$"), "storm 40", "other", "match") as (s, event):
        assert event.exception is not None and event.exception.message == "match"
        assert event.exception.type == IOE
        counts = stats(s)
        # 41 non-matching throws decided without SOS but for the first few (the reader's checks, by pe): in
        # the agent from the object itself, or on .NET 8 in the target (test_message_prefilter.py)
        in_target = counts["inline_filter"]["prefilter"].get("passed", 0)
        assert counts["field_reads"] + in_target >= 41 - 4, counts
        # pe: the reader's checks, the event's own, and on .NET 8 the last-thrown slot's checks
        assert counts["commands"].get("pe", 0) <= 10, counts["commands"]
        filtered = {e.exception.type for e in s.take_filtered()}
        logged = {"System.Collections.Generic.KeyNotFoundException", "System.FormatException"}
        # .NET 8: what the prefilter let through is not in the decision log (it never stopped)
        assert filtered == logged if runtime != "net8" else filtered <= logged and filtered
    assert tracer_of(waiting_app.pid) == 0


def test_a_stack_predicate_is_decided_through_the_stop_cache(waiting_app, runtime, no_lldb_left, monkeypatch):
    """thrown_in with the throw-site keys off (throw_sites.py; tests/integration/test_throw_sites.py has
    them on) needs the stack at every throw: the agent reads it through the stop cache, so throws at a
    place it has seen cost no clrstack (stop_cache.py proves the place is the same); the match is still
    decided on its own stack."""
    monkeypatch.setenv("PYDBGAUTO_NO_THROW_SITES", "1")
    with first_event(waiting_app, pda.thrown_in("Twice"), "storm 40", "twice") as (s, event):
        assert event.exception is not None and event.exception.type == IOE
        assert event.throw_site is not None and "Twice" in (event.throw_site.method or ""), event.throw_site
        counts = stats(s)
        assert counts["stop_cache"]["stack_hits"] >= 40 - 3, counts["stop_cache"]
        assert counts["stop_cache"]["chain_hits"] >= 40 - 3, counts["stop_cache"]
        assert counts["commands"].get("clrstack", 0) <= 6, counts["commands"]
        filtered = s.take_filtered()
        assert len(filtered) == 40 and {f.exception.type for f in filtered} == {
            "System.Collections.Generic.KeyNotFoundException"
        }
    assert tracer_of(waiting_app.pid) == 0


# ----- the count of every exception, stopped for or not (issue 10, item 1) -----------------------------


def watch_while(
    app: WaitingApp, tmp_path: Any, when: Any, lines: List[str], on_armed: Any = None, **options: Any
) -> Any:
    """Watch ``app`` while it runs ``lines`` (sent once the watch is armed; ``on_armed`` gets the armed
    event's data); the watch is stopped after them, unless ``options`` end it first."""
    stop = threading.Event()

    def run() -> None:
        try:
            for line in lines:
                command(app, line)
        finally:
            stop.set()

    def on_event(kind: str, data: Any) -> None:
        if kind == "armed":
            if on_armed is not None:
                on_armed(data)
            threading.Thread(target=run, daemon=True).start()

    options.setdefault("timeout", 180)
    return pda.watch(
        app.pid,
        when=when,
        dump_dir=str(tmp_path),
        log_path=str(tmp_path / "decisions.jsonl"),
        stop=stop,
        on_event=on_event,
        live=False,
        **options,
    )


def test_a_watch_counts_the_throws_it_never_stopped_for(waiting_app, runtime, tmp_path, no_lldb_left):
    """The runtime's own counter (exception_counter.py), read at the arming and at the end: every throw
    and rethrow of the watch, those the stub let go without a stop too; none from before it."""
    command(waiting_app, "storm 100")  # before the watch: not its throws
    never = pda.exception_type("System.DivideByZeroException")
    result = watch_while(waiting_app, tmp_path, never, ["storm 500", "rethrow", "other"])
    assert result.ended == "stopped" and result.filtered_in_debugger
    assert result.thrown == 500 + 2 + 1
    assert result.events_seen <= 3  # a stop for each type's first throw at most: the rest passed the stub
    assert str(result).startswith("503 exceptions thrown (the runtime's count), ")


def test_a_watch_ended_by_its_dump_counts_to_the_match(waiting_app, runtime, tmp_path, no_lldb_left):
    result = watch_while(waiting_app, tmp_path, pda.exception_type(IOE), ["storm 20", "match"], verify=False)
    assert result.ended == "max-dumps" and len(result.dumps) == 1
    # The storm, and the match the watch ends stopped at: .NET 9+ has counted it at that stop (the first
    # frame of its first pass); .NET 8 counts it as its first pass begins, after the stop at the rethrow.
    assert result.thrown == (21 if runtime != "net8" else 20)


def test_a_watch_to_the_exit_counts_to_the_exit_call(filterapp, runtime, tmp_path, no_lldb_left):
    """After the exit there is no process to read: the agent reads the counter at libc's exit() (Main
    returned), where the process is still whole, and the watch reports that."""
    result = pda.watch(
        launch=[filterapp, "mixed", "2"],
        when=pda.exception_type("System.DivideByZeroException"),
        dump_dir=str(tmp_path),
        log_path=str(tmp_path / "decisions.jsonl"),
        timeout=180,
        live=False,
    )
    assert result.ended == "exit"  # (its status may be unknown: lldb loses lldb-server at 1 exit in ~10)
    assert result.thrown == 2 * 4  # each round of "mixed" throws four


def test_a_process_killed_mid_watch_has_no_count(filterapp, runtime, tmp_path, no_lldb_left):
    """A SIGKILL ends the process without an exit(): no count is made up."""

    def kill_soon(kind: str, data: Any) -> None:
        if kind == "armed":
            threading.Timer(1.0, os.kill, (data["pid"], signal.SIGKILL)).start()

    result = pda.watch(
        launch=[filterapp, "timed", "60"],
        when=pda.exception_type("System.DivideByZeroException"),
        dump_dir=str(tmp_path),
        log_path=str(tmp_path / "decisions.jsonl"),
        timeout=120,
        live=False,
        on_event=kill_soon,
    )
    assert result.ended == "exit" and result.thrown is None
    assert "thrown" not in str(result)
