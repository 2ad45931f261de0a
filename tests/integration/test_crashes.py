"""Every way a .NET process dies, caught by watch() on the real lldb + SOS (issue 15), .NET 8 and .NET 10.

The target is examples/CrashApp (built by scripts/setup into .build/crash-net10 and .build/crash-net8):
stack overflow, Environment.FailFast, an unhandled exception on a background thread, unhandled hardware
faults (null dereference, divide by zero), an exception thrown 5,000 frames deep. Each gives one
second-chance event of the right kind with a bounded stack naming the thrower (or the repeating
frames), and a dump the independent reader verifies. Times are not asserted (they are measured and
printed: ``scripts/test tests/integration/test_crashes.py -s -k throw_to_dump``); bounds on what was read
are, and every run must end well inside the test's own limit with no lldb left.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import pytest

import pydbgauto as pda
from pydbgauto.watching import WatchResult, watch
from tests.integration.conftest import ROOT, lldb_processes, process_state

pytestmark = pytest.mark.lldb

CRASH_APPS = {
    "net8": os.path.join(ROOT, ".build", "crash-net8", "CrashApp"),
    "net10": os.path.join(ROOT, ".build", "crash-net10", "CrashApp"),
}
WATCH_LIMIT = 120.0  # the watch's own --timeout: every case must end (by its dump) well before it
MAX_SHOWN_FRAMES = 64  # a cut stack shows the top, the cycle once and the frames below it: a few dozen


@pytest.fixture
def crash_app(runtime: str) -> str:
    path = CRASH_APPS[runtime]
    if not os.access(path, os.X_OK):
        message = f"crash app {runtime} missing ({path}): run scripts/setup"
        if os.environ.get("PYDBGAUTO_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def crash_line(out_dir: str) -> Dict[str, str]:
    """The app's ``CRASH <scenario> pid=.. tid=.. at=..`` line, from the target's stdout file."""
    with open(os.path.join(out_dir, "target.stdout")) as f:
        for line in f:
            if line.startswith("CRASH "):
                return dict(part.split("=", 1) for part in line.split()[2:])
    raise AssertionError("the crash app printed no CRASH line")


def watch_crash(app: str, args: List[str], tmp_path, on_event=None) -> WatchResult:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    result = watch(
        launch=[app] + args,
        when=pda.second_chance(),
        dump_dir=str(dumps),
        timeout=WATCH_LIMIT,
        session_options={"output_dir": str(out)},
        on_event=on_event,
    )
    assert time.monotonic() - started < WATCH_LIMIT, "the watch ran into its own time limit"
    return result


def the_capture(result: WatchResult) -> pda.CaptureRecord:
    assert result.ended == "max-dumps", result
    assert len(result.captures) == 1, result.captures
    capture = result.captures[0]
    assert capture.event.kind == "second-chance"
    assert capture.dump is not None and capture.dump.verified, capture.dump
    assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
    with open(capture.record_path or "") as f:  # the record reads back, cut stack and crash included
        record = pda.CaptureRecord.from_dict(json.load(f))
    assert record.event.crash == capture.event.crash
    return capture


def capture_log(tmp_path) -> str:
    return str(tmp_path / "dumps" / "pydbgauto-decisions.jsonl")


def methods(stack: Optional[pda.ManagedStack]) -> List[str]:
    assert stack is not None
    return [f.method or f.call_site for f in stack.frames]


def assert_nothing_left(pid: int) -> None:
    """The crashed target is gone (not left stopped under a debugger), and no lldb of ours remains."""
    deadline = time.monotonic() + 10
    while process_state(pid) not in ("gone", "Z", "X") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_state(pid) in ("gone", "Z", "X"), f"the target {pid} is still there: {process_state(pid)}"


# ----- 1. stack overflow --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["main", "thread"])
def test_stack_overflow_is_caught_with_a_bounded_stack(crash_app, runtime, tmp_path, where, no_lldb_left):
    result = watch_crash(crash_app, ["stackoverflow"] + (["thread"] if where == "thread" else []), tmp_path)
    capture = the_capture(result)
    event = capture.event
    assert event.exception_type == "System.StackOverflowException"
    assert event.crash is not None and event.crash.kind == "stack-overflow"
    assert event.crash.report and event.crash.report.startswith("Stack overflow.")  # the runtime's own words
    assert "StackOverflowScenario.Ping(Int32)" in event.crash.report
    stack = event.stack
    assert stack is not None and stack.truncated, stack
    # Bounds on what was read: a stack of ~262,000 frames, a few dozen of them shown.
    assert stack.depth is not None and stack.depth > 100_000
    assert len(stack.frames) <= MAX_SHOWN_FRAMES
    assert "repeated" in stack.truncated and "clrstack" in stack.truncated
    names = methods(stack)
    assert "CrashApp.StackOverflowScenario.Ping(Int32)" in names
    assert "CrashApp.StackOverflowScenario.Pong(Int32)" in names
    assert "CrashApp.StackOverflowScenario.Start()" in names  # below the cycle: who started it
    if where == "main":
        assert "CrashApp.Program.Main(System.String[])" in names
    else:
        assert event.thread_id != int(crash_line(str(tmp_path / "out"))["pid"])
    assert event.throw_site is not None and "StackOverflowScenario.P" in (event.throw_site.method or "")
    assert event.thread_id == int(crash_line(str(tmp_path / "out"))["tid"])
    # The pe of a stack overflow has no frames; the capture record keeps the cut stack (the reader's
    # clrstack of 262,000 frames is not run: verification looks for the thread in its thread list).
    assert capture.stack is not None and capture.stack.truncated
    assert_nothing_left(int(crash_line(str(tmp_path / "out"))["pid"]))


def test_stack_overflow_throw_to_dump_times(crash_app, runtime, tmp_path, no_lldb_left):
    """Measured, printed, never asserted: run with -s to read them."""
    marks: Dict[str, float] = {}

    def on_event(kind: str, data: dict) -> None:
        marks[kind] = time.time()

    result = watch_crash(crash_app, ["stackoverflow"], tmp_path, on_event)
    capture = the_capture(result)
    thrown = float(crash_line(str(tmp_path / "out"))["at"])
    assert capture.dump is not None
    written = os.stat(capture.dump.path).st_mtime
    print(
        f"\nstack overflow {runtime}: recursion start -> stop seen {capture.event.time - thrown:.2f} s, "
        f"-> event read {marks['decision'] - thrown:.2f} s, "
        f"-> dump written {written - thrown:.2f} s, -> dump verified {marks['dump-done'] - thrown:.2f} s "
        f"(write {capture.dump.seconds:.2f} s, verify {capture.dump.verify_seconds or 0:.2f} s, "
        f"{capture.stack.depth if capture.stack else '?'} frames)"
    )


@pytest.mark.parametrize("stderr", ["file", "pipe"])
def test_attached_stack_overflow(crash_app, runtime, tmp_path, stderr, no_lldb_left):
    """Attached, not launched: the runtime's report is read from the target's stderr when that is a file;
    through a pipe there is none, and the exception on the thread still says stack overflow."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [crash_app, "wait"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err if stderr == "file" else subprocess.PIPE,
            text=True,
        )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        while not proc.stdout.readline().startswith("READY"):
            assert proc.poll() is None, "the crash app ended before READY"

        def on_event(kind: str, data: dict) -> None:
            if kind == "armed":
                proc.stdin.write("stackoverflow\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]

        dumps = tmp_path / "dumps"
        dumps.mkdir()
        result = watch(
            pid=proc.pid,
            when=pda.second_chance(),
            dump_dir=str(dumps),
            timeout=WATCH_LIMIT,
            on_event=on_event,
        )
        capture = the_capture(result)
        crash = capture.event.crash
        assert crash is not None and crash.kind == "stack-overflow"
        if stderr == "file":
            assert crash.report and crash.report.startswith("Stack overflow.")
        else:
            assert crash.report is None
        assert capture.event.stack is not None and capture.event.stack.truncated
        assert "CrashApp.StackOverflowScenario.Ping(Int32)" in methods(capture.event.stack)
        proc.wait(timeout=30)  # detached at its abort: it dies
        assert proc.returncode == -signal.SIGABRT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----- 2. fail-fast and other fatal runtime errors ----------------------------------------------------


def test_failfast_gives_its_message_stack_and_dump(crash_app, runtime, tmp_path, no_lldb_left):
    message = f"pydbgauto fail-fast check {runtime}"
    capture = the_capture(watch_crash(crash_app, ["failfast", message], tmp_path))
    event = capture.event
    assert event.crash is not None and event.crash.kind == "fail-fast"
    assert event.crash.message == message
    with open(capture_log(tmp_path)) as f:  # the decision log says it too
        assert json.loads(f.readline())["crash"] == {"kind": "fail-fast", "message": message}
    assert "Process terminated." in (event.crash.report or "")
    assert event.exception_type == "System.ExecutionEngineException"  # what the runtime makes the thread's
    names = methods(event.stack)
    assert "CrashApp.FailFastScenario.Die(System.String)" in names
    assert any(n.startswith("System.Environment.FailFast(") for n in names)
    assert event.stack is not None and not event.stack.truncated
    assert event.thread_id == int(crash_line(str(tmp_path / "out"))["tid"])
    assert_nothing_left(int(crash_line(str(tmp_path / "out"))["pid"]))


def test_unhandled_exception_on_a_background_thread(crash_app, runtime, tmp_path, no_lldb_left):
    capture = the_capture(watch_crash(crash_app, ["background-crash"], tmp_path))
    event = capture.event
    line = crash_line(str(tmp_path / "out"))
    assert event.thread_id == int(line["tid"]) and event.thread_id != int(line["pid"])  # not the main thread
    assert event.exception_type == "System.InvalidOperationException"
    assert event.exception is not None and event.exception.message == "the background worker lost its queue"
    assert event.crash is not None and event.crash.kind == "unhandled-exception"
    assert event.crash.message == "the background worker lost its queue"
    assert event.throw_site is not None and event.throw_site.method == "CrashApp.Worker.Run()"
    assert capture.dump is not None and capture.dump.seen_exception_type == "System.InvalidOperationException"
    assert capture.dump.seen_thread_id == event.thread_id
    assert_nothing_left(int(line["pid"]))


@pytest.mark.parametrize(
    "scenario, exception_type, thrower",
    [
        ("nullref-unhandled", "System.NullReferenceException", "CrashApp.FaultScenario.NullDereference"),
        ("divzero-unhandled", "System.DivideByZeroException", "CrashApp.FaultScenario.Divide"),
    ],
)
def test_unhandled_hardware_fault_at_second_chance(
    crash_app, runtime, tmp_path, scenario, exception_type, thrower, no_lldb_left
):
    capture = the_capture(watch_crash(crash_app, [scenario], tmp_path))
    event = capture.event
    assert event.exception_type == exception_type
    assert event.crash is not None and event.crash.kind == "unhandled-exception"
    assert event.crash.exception_type == exception_type
    assert event.throw_site is not None and (event.throw_site.method or "").startswith(thrower)
    assert capture.dump is not None and capture.dump.seen_exception_type == exception_type
    assert_nothing_left(int(crash_line(str(tmp_path / "out"))["pid"]))


# ----- 4. bounds on every SOS command at a stop -----------------------------------------------------


def test_deep_unhandled_throw_is_read_in_bounds(crash_app, runtime, tmp_path, no_lldb_left):
    """50,000 frames: clrstack would take minutes, pe (live and in the reader: 78 s) print a 50,000-frame
    trace; all bounded. The dump's check reads the reader's thread list, not its pe.

    A Session that does not arm first-chance stops: on .NET 10 a first-chance watch pays one
    AppendExceptionStackFrame stop per frame of the first pass (~50 s for 5,000 frames, docs/linux.md)."""
    with pda.Session.launch(
        [crash_app, "deep-throw", "50000", "unhandled"], output_dir=str(tmp_path)
    ) as session:
        event = session.wait_for_event(timeout=WATCH_LIMIT)
        assert event.kind == "second-chance"
        dump = session.dump(str(tmp_path / "deep.core"))
    assert dump.verified, dump
    assert dump.seen_exception_type == "System.InvalidOperationException"
    assert event.crash is not None and event.crash.kind == "unhandled-exception"
    assert event.stack is not None and event.stack.truncated
    assert event.stack.depth is not None and event.stack.depth > 50_000
    assert len(event.stack.frames) <= MAX_SHOWN_FRAMES
    assert "CrashApp.DeepScenario.Descend(Int32)" in event.stack.truncated  # the cycle, named once
    assert (
        event.throw_site is not None and event.throw_site.method == "CrashApp.DeepScenario.ThrowAtTheBottom()"
    )
    exception = event.exception
    assert exception is not None and exception.type == "System.InvalidOperationException"
    assert exception.message == "thrown at the bottom of a deep stack"
    assert exception.hresult == 0x80131509
    assert exception.truncated and exception.frames == ()  # pe not run: it says so
    assert "Descend" in methods(event.stack)[methods(event.stack).index(event.throw_site.method) + 1]


def test_deep_first_chance_throw_is_read_in_bounds(crash_app, runtime, tmp_path, no_lldb_left):
    """A handled throw 1,500 frames deep: the first-chance event comes with a cut stack naming the thrower."""
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    result = watch(
        launch=[crash_app, "deep-throw", "1500"],
        when=pda.exception_type("System.InvalidOperationException") & pda.first_chance(),
        dump_dir=str(dumps),
        timeout=WATCH_LIMIT,
    )
    assert result.ended == "max-dumps", result
    event = result.captures[0].event
    assert event.kind == "first-chance"
    assert event.stack is not None and event.stack.truncated and (event.stack.depth or 0) > 1500
    assert len(event.stack.frames) <= MAX_SHOWN_FRAMES
    assert "CrashApp.DeepScenario.ThrowAtTheBottom()" in methods(event.stack)
    assert event.exception is not None and event.exception.message == "thrown at the bottom of a deep stack"
    assert result.captures[0].dump is not None and result.captures[0].dump.verified


def test_crash_among_a_thousand_threads(crash_app, runtime, tmp_path, no_lldb_left):
    """1,000 waiting threads: the event, the thread table of the capture and the dump all come, in full."""
    capture = the_capture(watch_crash(crash_app, ["many-threads", "1000"], tmp_path))
    event = capture.event
    assert event.exception is not None and event.exception.message == "crashed with 1000 threads waiting"
    assert event.throw_site is not None and event.throw_site.method == "CrashApp.ThreadsScenario.Crash(Int32)"
    assert event.stack is not None and not event.stack.truncated
    assert capture.threads is not None and (capture.threads.thread_count or 0) >= 1000
    assert_nothing_left(int(crash_line(str(tmp_path / "out"))["pid"]))


# ----- Ctrl-C and --timeout during a stack-overflow capture -------------------------------------------


def lldb_of(owner: int) -> List[int]:
    """lldb processes a given pydbgauto process started (tagged with its pid). Asked up to 3 times 50 ms
    apart: a `pgrep -f` taken the moment the dump writer starts has been seen to list none of them."""
    for _ in range(3):
        found = lldb_processes(owner)
        if found:
            return found
        time.sleep(0.05)
    return []


def start_cli(args: List[str], tmp_path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "pydbgauto", "watch", "--json", "--dump-dir", str(tmp_path)] + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def read_json_until(proc: subprocess.Popen, event: str, timeout: float) -> List[dict]:
    """The CLI's JSON lines up to the first ``event`` line, as they come. Read by a thread: a select() on
    the pipe does not see lines that a readline() already took into its buffer (two lines written
    together, e.g. "exception" and "dump-start", would leave the second unseen until the next one)."""
    assert proc.stdout is not None
    lines: "queue.Queue[Optional[dict]]" = queue.Queue()

    def read() -> None:
        for raw in proc.stdout:  # type: ignore[union-attr]
            lines.put(json.loads(raw))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: List[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if line.get("event") == event:
            return seen
    raise AssertionError(f"no {event!r} line within {timeout} s: {seen}")


@pytest.mark.parametrize("moment", ["exception", "dump-start"])
def test_ctrl_c_during_a_stack_overflow_capture(crash_app, runtime, tmp_path, moment):
    proc = start_cli(
        ["--second-chance", "--timeout", str(WATCH_LIMIT), "--", crash_app, "stackoverflow"], tmp_path
    )
    try:
        lines = read_json_until(proc, moment, 60)
        target = next(line["pid"] for line in lines if line.get("event") == "armed")
        assert lldb_of(proc.pid), "the watch runs no lldb"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=15)
        ended_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert ended_after < 15
    # The rest of the capture (clrthreads, the dump, its verification) takes a second or more: interrupted.
    assert rc == 130, proc.stderr.read() if proc.stderr else ""
    deadline = time.monotonic() + 10
    while lldb_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not lldb_of(proc.pid), "an lldb process was left behind"
    left = [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
    assert not left, f"a partial dump was left: {left}"
    assert_nothing_left(target)  # detached at its abort: it dies, it is not left stopped


def test_timeout_shorter_than_the_capture_still_ends_the_watch(crash_app, runtime, tmp_path):
    """--timeout 2: the crash comes within it; the bounded capture finishes, the watch ends soon after."""
    proc = start_cli(["--second-chance", "--timeout", "2", "--", crash_app, "stackoverflow"], tmp_path)
    try:
        started = time.monotonic()
        rc = proc.wait(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read() if proc.stdout else ""
    assert rc in (0, 1), out + (proc.stderr.read() if proc.stderr else "")
    assert elapsed < 60
    summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line]
    assert summary and summary[0]["ended"] in ("max-dumps", "timeout", "exit")
    assert not lldb_of(proc.pid)
    assert not re.search(r"\.partial$", " ".join(os.listdir(tmp_path)))
