"""Break in and dump now on the real lldb + SOS and the real sample app (issue 13, item 2)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any, Dict

import pytest

from pydbgauto.session import Session
from pydbgauto.snapshot import snapshot
from tests.integration.conftest import APPS, ROOT, WaitingApp, process_state, tracer_of

pytestmark = pytest.mark.lldb


def _wait_in_thread(session: Session, timeout: float) -> Dict[str, Any]:
    got: Dict[str, Any] = {}

    def run() -> None:
        try:
            got["event"] = session.wait_for_event(timeout)
        except Exception as e:  # noqa: BLE001 - the test looks at it
            got["error"] = e

    got["thread"] = threading.Thread(target=run, daemon=True)
    got["thread"].start()
    deadline = time.monotonic() + 10
    while not session.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # let the target run
    return got


def test_break_in_stops_a_running_target_then_it_runs_on(waiting_app, tmp_path, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        got = _wait_in_thread(s, 120)
        assert waiting_app.state() in "RS"  # running (sleeping in ReadLine), not stopped
        started = time.monotonic()
        event = s.break_in(timeout=30)
        got["thread"].join(30)
        assert time.monotonic() - started < 10  # not the wait's 120 s limit
        assert event.kind == "break" and got.get("event") is event, got
        assert event.pid == waiting_app.pid and event.thread_id is not None and event.exception is None
        assert waiting_app.state() == "t"  # every thread stopped under the tracer
        # the dump at a stop with no exception: verified on the thread list, not on an exception
        record = s.dump(str(tmp_path / "hang.core"))
        assert record.verified, record.verify_error
        # the target goes on: the next exception is caught as usual (no stale cancel ends the wait)
        waiting_app.send("invalid-op")
        next_event = s.wait_for_event(60)
        assert next_event.kind == "first-chance"
        assert next_event.exception is not None
        assert next_event.exception.type == "System.InvalidOperationException"
    assert waiting_app.wait_for_line("OK invalid-op", 30)


def test_break_in_right_after_attach_needs_no_interrupt(waiting_app, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        event = s.break_in()
        assert event.kind == "break" and event.sequence == 1
        assert event.thread_id == waiting_app.pid  # lldb selects the main thread at attach
        assert event.stack is not None
        assert any("ThrowingApp.Program.Wait" in (f.method or "") for f in event.stack.frames)


def test_snapshot_at_an_exception_stop_lists_the_current_exception(waiting_app, tmp_path, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("invalid-op")
        stop = s.wait_for_event(60)
        record = snapshot(s, str(tmp_path), verify=False)
    assert [(e.thread_id, e.exception.type if e.exception else None) for e in record.exceptions] == [
        (stop.thread_id, "System.InvalidOperationException")
    ]
    assert record.dump is not None and os.path.getsize(record.dump.path) > 1 << 20
    assert record.threads is not None and record.stacks


def test_dump_command_writes_a_verified_hang_dump_and_leaves_the_process_running(tmp_path, no_lldb_left):
    app = WaitingApp(APPS["net10"])
    try:
        done = subprocess.run(
            [os.path.join(ROOT, "scripts", "pydbgauto"), "dump", "--pid", str(app.pid)]
            + ["--dump-dir", str(tmp_path), "--json"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        assert record["dump"]["verified"] and record["event"]["kind"] == "break"
        assert os.path.basename(record["dump"]["path"]).startswith(f"ThrowingApp_{app.pid}_1_hang_")
        assert os.stat(record["dump"]["path"]).st_mode & 0o777 == 0o600
        main = [st for st in record["stacks"] if st["os_thread_id"] == app.pid]
        assert main and any("ThrowingApp.Program.Wait" in (f["method"] or "") for f in main[0]["frames"])
        assert {t["os_id"] for t in record["threads"]["threads"]} >= {app.pid}
        with open(record["record_path"]) as f:
            assert json.load(f)["dump"]["sha256"] == record["dump"]["sha256"]
        # left running, no tracer, still answering
        assert tracer_of(app.pid) == 0 and process_state(app.pid) in "RS"
        app.send("invalid-op")
        assert app.wait_for_line("OK invalid-op", 30)
    finally:
        app.finish()


def test_dump_command_on_a_process_that_is_not_dotnet_says_so(tmp_path, no_lldb_left):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        done = subprocess.run(
            [os.path.join(ROOT, "scripts", "pydbgauto"), "dump", "--pid", str(sleeper.pid)]
            + ["--dump-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 3, done.stderr
        assert "does not run .NET" in done.stderr
        assert os.listdir(tmp_path) == []
        assert sleeper.poll() is None and tracer_of(sleeper.pid) == 0  # left running, untraced
    finally:
        sleeper.kill()
        sleeper.wait()
