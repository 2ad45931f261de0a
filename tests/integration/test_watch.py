"""watch() and `pydbgauto watch` on the real sample app: the right throws dumped, every throw logged."""

from __future__ import annotations

import json
import os
import signal

import pytest

import pydbgauto as pda
from tests.watch_cases import CASES as SHARED_CASES
from tests.watch_cases import throws_seen
from pydbgauto.watching import watch
from pydbgauto.drivers.lldb.filter_stub import type_verdict
from pydbgauto.drivers.lldb.message_prefilter import condition
from tests.integration.conftest import ROOT, WaitingApp, run_cli, throw_lines, tracer_of

pytestmark = pytest.mark.lldb

CASES = SHARED_CASES


def send_when_armed(app: WaitingApp, *lines: str):
    """An on_event callback that drives the app once the watch is armed (not before: unseen throws)."""

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            for line in lines:
                app.send(line)

    return on_event


TIMEOUT_CHAIN = ("System.TimeoutException", "System.SystemException", "System.Exception", "System.Object")


def ruled_out_in_target(predicate: object, chain: tuple) -> bool:
    """Whether the agent decides this predicate and its type alone rules ``chain`` out (the in-target
    filter then caches the type: docs/linux-fast-filter.md)."""
    spec = predicate.to_spec() if isinstance(predicate, pda.Predicate) else None
    return (
        spec is not None
        and predicate.needs <= {"stack", "type_chain"}  # type: ignore[attr-defined]
        and type_verdict(spec, chain) is False
    )


def prefiltered_in_target(predicate: object) -> bool:
    """Whether .NET 8's stub rules throws out by message/HResult too (message_prefilter.py)."""
    spec = predicate.to_spec() if isinstance(predicate, pda.Predicate) else None
    return spec is not None and condition(spec) is not None


def read_log(path: str) -> list:
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("case", sorted(CASES))
def test_predicates_select_exactly_their_throws(app, runtime, tmp_path, case, no_lldb_left):
    predicate, expected = CASES[case]
    result = watch(
        launch=[app, "first-chance"], when=predicate, dump_dir=str(tmp_path), max_dumps=5, timeout=120
    )
    assert result.ended == "exit"
    assert [c.exception.type for c in result.captures] == expected
    for capture in result.captures:
        assert capture.dump is not None and capture.dump.verified, capture.dump
        assert capture.dump.seen_exception_type == capture.exception.type
        assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
        with open(capture.record_path) as f:
            record = pda.CaptureRecord.from_dict(json.load(f))
        assert record.exception.address == capture.exception.address
        assert record.dump.sha256 == capture.dump.sha256
    # The decision log accounts for every throw the app made, plus its exit; but the rethrow of the
    # TimeoutException never stops when the in-target filter has ruled its type out at the first throw.
    throws = throws_seen(runtime) - (1 if ruled_out_in_target(predicate, TIMEOUT_CHAIN) else 0)
    if runtime == "net8" and prefiltered_in_target(predicate):
        # the first 3 throws stop (the field reader's checks against pe); of the rest no throw through the
        # funnel holds the message/HResult condition (none stops), the null dereference does not pass it
        throws = 3 + 1
    log = read_log(result.log_path)
    assert len(log) == throws + 1 and log[-1]["kind"] == "exit"
    assert sum(1 for line in log if line["action"] == "dump") == len(expected)
    if case == "thrown_in":  # the rethrow of the same object matched again, and was recognised
        assert [line["reason"] for line in log if line["matched"]] == ["matched", "duplicate-object"]


def test_policy_limits_on_a_repeating_throw(runtime, tmp_path, no_lldb_left):
    app = WaitingApp(os.path.join(ROOT, ".build", f"app-{runtime}", "ThrowingApp"))
    try:
        # skip_first=3, then dumps 4 and 5 (no dedupe), then the limit ends the watch
        result = watch(
            pid=app.pid,
            when=pda.exception_type("System.InvalidOperationException"),
            dump_dir=str(tmp_path),
            max_dumps=2,
            skip_first=3,
            dedupe=False,
            timeout=120,
            on_event=send_when_armed(app, "repeat 12"),
        )
        reasons = [d.reason for _, d in result.decisions]
        assert reasons == ["skip-first"] * 3 + ["matched", "matched"]
        assert result.ended == "max-dumps" and len(result.captures) == 2
        assert all(c.dump.verified for c in result.captures)
        # the target goes on, free: it finishes its 12 throws
        assert len(throw_lines(app.finish())) == 12
    finally:
        if app.proc.poll() is None:
            app.proc.kill()


def test_cooldown_dedupe_and_disk_guard(runtime, tmp_path, no_lldb_left):
    path = os.path.join(ROOT, ".build", f"app-{runtime}", "ThrowingApp")
    ioe = pda.exception_type("System.InvalidOperationException")
    for options, expected in [
        (dict(cooldown=3600, dedupe=False, max_dumps=3), ["matched", "cooldown", "cooldown", "cooldown"]),
        (dict(max_dumps=3), ["matched", "duplicate-stack", "duplicate-stack", "duplicate-stack"]),
    ]:
        app = WaitingApp(path)
        folder = tmp_path / str(len(os.listdir(tmp_path)))
        folder.mkdir()
        try:
            result = watch(
                pid=app.pid,
                when=ioe,
                dump_dir=str(folder),
                timeout=120,
                on_event=send_when_armed(app, "repeat 4", "exit"),
                **options,
            )
            assert [d.reason for e, d in result.decisions if e.kind != "exit"] == expected, options
            assert len(result.captures) == expected.count("matched")
        finally:
            if app.proc.poll() is None:
                app.proc.kill()


def test_disk_guard_refuses_up_front(runtime, tmp_path, no_lldb_left):
    """min_free_disk plus the target's memory cannot fit: refused before a debugger starts (pid) or
    before arming (launch), with the sizes in the message."""
    app = WaitingApp(os.path.join(ROOT, ".build", f"app-{runtime}", "ThrowingApp"))
    try:
        with pytest.raises(pda.DiskSpaceError, match="min_free_disk"):
            watch(pid=app.pid, dump_dir=str(tmp_path), min_free_disk=1 << 60, timeout=30)
        assert tracer_of(app.pid) == 0
    finally:
        app.proc.kill()
        app.proc.wait()
    with pytest.raises(pda.DiskSpaceError, match="can take up to"):
        watch(
            launch=[app.proc.args[0], "quiet", "2"], dump_dir=str(tmp_path), min_free_disk=1 << 60, timeout=30
        )


def test_debugger_side_filter_and_round_trip_agree(app, tmp_path, no_lldb_left):
    predicate = pda.exception_type("System.ArgumentException", derived=True) | pda.exception_type(
        "System.TimeoutException"
    )
    answers = []
    for in_debugger in (True, False):
        folder = tmp_path / str(in_debugger)
        folder.mkdir()
        result = watch(
            launch=[app, "first-chance"],
            when=predicate,
            dump_dir=str(folder),
            max_dumps=5,
            timeout=120,
            verify=False,
            in_debugger_filter=in_debugger,
        )
        assert result.filtered_in_debugger is in_debugger
        answers.append([(e.kind, e.exception_type, d.action, d.reason) for e, d in result.decisions])
    assert answers[0] == answers[1]
    # A plain callable cannot run in the debugger: it falls back to the round trip, same answers.
    result = watch(
        launch=[app, "first-chance"],
        when=lambda exc: exc.type == "ThrowingApp.OrderRejectedException",
        dump_dir=str(tmp_path),
        max_dumps=5,
        timeout=120,
        verify=False,
    )
    assert not result.filtered_in_debugger
    assert [c.exception.type for c in result.captures] == ["ThrowingApp.OrderRejectedException"]


def test_a_callable_decides_on_what_the_debugger_read(app, runtime, tmp_path, no_lldb_left):
    """A callable that reads the message only is called once per throw, on the thin stop (no SOS read for
    it); its match is dumped, then read for the record. One that reads the stack gets the full stop."""
    calls = []

    def declined(exc):  # type: ignore[no-untyped-def]
        calls.append((exc.type, type(exc) is pda.ManagedException))  # a subclass: the thin stop's
        return "card declined" in (exc.message or "")

    result = watch(
        launch=[app, "first-chance"], when=declined, dump_dir=str(tmp_path), max_dumps=5, timeout=120
    )
    assert [c.exception.type for c in result.captures] == ["ThrowingApp.OrderRejectedException"]
    assert len(calls) == throws_seen(runtime) and calls[1][0] == "ThrowingApp.OrderRejectedException"
    assert not any(full for _, full in calls), calls  # every throw decided before SOS read it
    capture = result.captures[0]
    assert capture.dump is not None and capture.dump.verified
    with open(capture.record_path) as f:
        record = pda.CaptureRecord.from_dict(json.load(f))
    assert record.stack is not None and record.stack.frames  # read after the dump, at the same stop
    assert record.exception.message and "card declined" in record.exception.message
    log = read_log(result.log_path)
    assert len(log) == throws_seen(runtime) + 1  # every throw decided and logged
    stacks = []

    def sees_the_stack(event: pda.StopEvent) -> bool:
        stacks.append(event.stack is not None and len(event.stack.frames) > 0)
        return False

    folder = tmp_path / "stack"
    folder.mkdir()
    watch(launch=[app, "first-chance"], when=sees_the_stack, dump_dir=str(folder), timeout=120)
    assert stacks == [True] * throws_seen(runtime)  # the stack was read for it, at every stop


def test_second_chance_capture_of_a_crash(app, tmp_path, no_lldb_left):
    result = watch(launch=[app, "crash"], when=pda.second_chance(), dump_dir=str(tmp_path), timeout=120)
    assert [c.event.kind for c in result.captures] == ["second-chance"]
    capture = result.captures[0]
    assert capture.exception.type == "System.InvalidOperationException" and capture.dump.verified
    assert capture.threads is not None and capture.threads.thread_count >= 1
    assert result.ended in ("max-dumps", "exit")


def test_a_crash_watched_to_its_death_is_counted_at_its_abort(app, runtime, tmp_path, no_lldb_left):
    """An unhandled exception ends the process by abort(), not exit(): the runtime's count is read at the
    SIGABRT (second chance), the process still whole, and reported after its death."""
    never = pda.exception_type("System.DivideByZeroException")
    result = watch(launch=[app, "crash"], when=never, dump_dir=str(tmp_path), timeout=120, live=False)
    assert result.ended == "exit" and not result.captures
    assert [e.kind for e, _ in result.decisions][-2:] == ["second-chance", "exit"]
    assert result.thrown == 1  # the one throw nothing caught


# ----- the CLI ------------------------------------------------------------------------------------------


def test_cli_json_lines_and_exit_codes(app, tmp_path, no_lldb_left):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = run_cli(
        "watch",
        "--type",
        "System.InvalidOperationException",
        "--dump-dir",
        str(tmp_path),
        "--json",
        "--",
        app,
        "first-chance",
        tmpdir=str(temporary),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["event"] == "armed"
    # the launched app's own output, as JSON lines too (cli/target_output.py); its files removed at the end
    shown = "".join(line["text"] for line in lines if line["event"] == "target-output")
    assert "CAUGHT System.InvalidOperationException" in shown, lines
    left = [p for p in temporary.iterdir() if p.name.startswith("pydbgauto-output")]
    if left:  # the app was still running after its dump: the watch says where its output goes on
        assert len(left) == 1 and f"its output goes on into {left[0]}" in done.stderr, done.stderr
    dumps = [line for line in lines if line["event"] == "dump"]
    assert len(dumps) == 1 and dumps[0]["capture"]["dump"]["verified"]
    assert lines[-1]["event"] == "summary" and lines[-1]["dumps"] == [dumps[0]["capture"]["dump"]["path"]]
    assert isinstance(lines[-1]["thrown"], int)  # the runtime's count: the target was stopped at the end
    # no match before the target exits: exit code 1
    none = run_cli(
        "watch",
        "--type",
        "System.DivideByZeroException",
        "--dump-dir",
        str(tmp_path),
        "--",
        app,
        "first-chance",
    )
    assert none.returncode == 1, none.stderr
    assert "0 dumps written" in none.stdout
    # text: the app's lines as it wrote them, each whole, among the watch's
    assert "\nCAUGHT ThrowingApp.OrderRejectedException\n" in none.stdout, none.stdout


def test_cli_when_module_function(app, tmp_path, no_lldb_left):
    (tmp_path / "mychecks.py").write_text(
        "def is_card(exc):\n    return exc.message is not None and 'card' in exc.message\n"
    )
    done = run_cli(
        "watch",
        "--when",
        "mychecks:is_card",
        "--dump-dir",
        str(tmp_path),
        "--no-verify",
        "--",
        app,
        "first-chance",
        cwd=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert "OrderRejectedException" in done.stdout and "dump 1:" in done.stdout


def test_cli_a_launched_program_that_outlives_the_watch_is_told_of(app, tmp_path, no_lldb_left):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = run_cli(
        "watch",
        "--timeout",
        "3",
        "--dump-dir",
        str(tmp_path),
        "--",
        app,
        "quiet",
        "60",
        tmpdir=str(temporary),
    )
    armed = [line for line in done.stdout.splitlines() if line.startswith("watching pid ")]
    pid = int(armed[0].split()[2])
    try:
        assert done.returncode == 1, done.stderr  # no match
        (left,) = [p for p in temporary.iterdir() if p.name.startswith("pydbgauto-output")]
        assert (
            f"(pid {pid}) goes on running, no longer watched; its output goes on into {left}" in done.stderr
        )
    finally:
        os.kill(pid, signal.SIGKILL)


def test_cli_launches_dotnet_app_dll_found_on_path(tmp_path, no_lldb_left):
    """``-- dotnet App.dll``: the program is found on PATH as a shell would; the dump is named after the
    app."""
    from tests.integration.conftest import APPS

    dll = APPS["net10"] + ".dll"  # the framework-dependent sample: its ThrowingApp.dll
    done = run_cli(
        "watch", "--type", "System.InvalidOperationException", "--dump-dir", str(tmp_path), "--no-verify",
        "--", "dotnet", dll, "invalid-op",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    dumps = [p.name for p in tmp_path.iterdir() if p.name.endswith(".core")]
    assert len(dumps) == 1 and dumps[0].startswith("ThrowingApp_"), dumps
