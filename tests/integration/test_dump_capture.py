"""The full dump as the fast writer makes it, and the capture step's order around the target's pause.

A dump is written while the target is stopped (process_vm_readv into a reused buffer, zero blocks as
holes); verification, sha256 and the capture record follow once the target runs again, and the record
says how long the target was held (``dump.pause_seconds``). Times are never asserted, only their order
and what the target was doing.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import threading
import time
from typing import List, Tuple

import pytest

import pydbgauto as pda
from pydbgauto.session import Session
from pydbgauto.readers import dotnet_dump
from pydbgauto.watching import watch
from tests.integration.conftest import process_state, tracer_of
from tests.integration.test_robustness import assert_target_free_and_working

pytestmark = pytest.mark.lldb


def test_fast_dump_reopens_with_dotnet_dump_and_shows_the_exception(waiting_app, tmp_path, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("invalid-op")
        event = s.wait_for_event(60)
        record = s.dump(str(tmp_path / "fast.core"), expect=event)
        written = s.driver.info["last_dump"]
    assert written["read_with"] == "process_vm_readv"  # the kernel allows it here (root, or the tracer)
    assert record.verified, record.verify_error
    assert record.seen_exception_type == "System.InvalidOperationException"
    assert record.seen_thread_id == event.thread_id
    st = os.stat(record.path)
    assert st.st_mode & 0o777 == 0o600 and record.size == st.st_size
    # Zero blocks are holes: the disk holds well under the dump's size, and the bytes written say so too.
    assert st.st_blocks * 512 < st.st_size * 0.8 and written["bytes_copied"] < st.st_size * 0.8
    assert os.listdir(tmp_path) == ["fast.core"]  # no temporary file left
    reading = dotnet_dump.read(
        record.path, exception_address=event.exception_address, thread_id=event.thread_id
    )
    assert reading.exception is not None and reading.exception.type == event.exception.type
    assert reading.stack is not None and reading.stack.os_thread_id == event.thread_id
    assert not reading.warnings  # the diagnostic info page is there: no "not created by createdump"


IOE = "System.InvalidOperationException"

# A stand-in for the dump reader (test double): the real dotnet-dump cannot be made to fail, or to take
# its time, on demand. It notes its pid, waits ``PDA_READER_DOUBLE_SLEEP`` seconds, and cannot open the dump.
READER_DOUBLE = """#!/bin/sh
echo $$ >> "$PDA_READER_DOUBLE_LOG"
sleep "${PDA_READER_DOUBLE_SLEEP:-0}"
echo "reader double: cannot open $2" >&2
exit 1
"""


@pytest.fixture
def reader_double(tmp_path_factory, monkeypatch):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("reader")
    script = folder / "dotnet-dump"
    script.write_text(READER_DOUBLE)
    script.chmod(0o755)
    log = folder / "pids"
    monkeypatch.setenv("PYDBGAUTO_DOTNET_DUMP", str(script))
    monkeypatch.setenv("PDA_READER_DOUBLE_LOG", str(log))
    yield log
    for line in log.read_text().split() if log.exists() else []:  # leave no reader running
        deadline = time.monotonic() + 30
        while process_state(int(line)) not in ("gone", "Z") and time.monotonic() < deadline:
            time.sleep(0.05)


def _files(folder: str) -> List[str]:
    return sorted(os.listdir(folder))


def test_verification_and_record_come_after_the_resume_and_say_the_pause(waiting_app, tmp_path, no_lldb_left):
    """At dump-start the target is stopped; when the reader has checked the dump (dump-done) it runs
    again, still traced: the watch went on. (The last capture's check runs while the debugger detaches.)"""
    pid = waiting_app.pid
    seen: List[Tuple[str, str, bool]] = []

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            waiting_app.send("invalid-op")
        elif kind in ("dump-start", "dump-done"):
            seen.append((kind, process_state(pid), tracer_of(pid) != 0))
            if kind == "dump-done" and len(seen) == 2:
                waiting_app.send("invalid-op")  # the second capture ends the watch (max_dumps)

    result = watch(
        pid=pid,
        when=pda.exception_type(IOE),
        dump_dir=str(tmp_path),
        max_dumps=2,
        dedupe=False,  # the same throw twice
        timeout=60,
        on_event=on_event,
    )
    assert result.ended == "max-dumps" and len(result.dumps) == 2
    assert [(k, state in ("R", "S"), traced) for k, state, traced in seen[:3]] == [
        ("dump-start", False, True),  # stopped ("t") for the write
        ("dump-done", True, True),  # the watch waits again: running
        ("dump-start", False, True),
    ], seen
    assert seen[3][0] == "dump-done"
    dump = result.dumps[0].dump
    assert dump is not None and dump.verified, dump and dump.verify_error
    assert dump.seen_exception_type == IOE and len(dump.sha256 or "") == 64
    assert dump.pause_seconds is not None and 0 < dump.pause_seconds
    # the pause ended before the check began: it is shorter than stop-to-verified less the check
    timings = result.dumps[0].timings
    assert dump.pause_seconds <= timings["stop_to_verified"] - (dump.verify_seconds or 0)
    with open(result.dumps[0].record_path or "") as f:
        record = json.load(f)
    assert record["dump"]["pause_seconds"] == dump.pause_seconds and record["dump"]["verified"]
    names = [os.path.basename(c.dump.path) for c in result.dumps if c.dump is not None]
    assert _files(str(tmp_path)) == sorted(
        names + [n + ".json" for n in names] + ["pydbgauto-decisions.jsonl"]
    )


def test_a_failed_verification_after_the_resume_keeps_the_whole_dump_and_says_so(
    waiting_app, tmp_path, reader_double, no_lldb_left
):
    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            waiting_app.send("invalid-op")

    result = watch(
        pid=waiting_app.pid,
        when=pda.exception_type(IOE),
        dump_dir=str(tmp_path),
        timeout=120,
        on_event=on_event,
    )
    capture = result.captures[0]
    dump = capture.dump
    assert dump is not None and not dump.verified
    assert "could not open" in (dump.verify_error or "") and "reader double" in (dump.verify_error or "")
    assert dump.pause_seconds is not None and len(dump.sha256 or "") == 64
    st = os.stat(dump.path)
    assert st.st_size == dump.size and st.st_mode & 0o777 == 0o600
    with open(capture.record_path or "") as f:
        record = json.load(f)
    assert not record["dump"]["verified"] and "could not open" in record["dump"]["verify_error"]
    assert _files(str(tmp_path)) == sorted(  # no temporary or partial file beside them
        [os.path.basename(dump.path), os.path.basename(dump.path) + ".json", "pydbgauto-decisions.jsonl"]
    )
    assert_target_free_and_working(waiting_app)


def test_a_signal_during_the_check_after_the_resume_removes_the_dump_and_says_so(
    waiting_app, tmp_path, reader_double, monkeypatch, no_lldb_left
):
    """All or nothing, as for a signal during the write: the reader is still at work when SIGTERM
    comes; the watch ends (Interrupted), the dump is gone and the record says why."""
    monkeypatch.setenv("PDA_READER_DOUBLE_SLEEP", "2")

    def signal_once_reading() -> None:
        deadline = time.monotonic() + 60
        while not reader_double.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            waiting_app.send("invalid-op")
            threading.Thread(target=signal_once_reading, daemon=True).start()

    with pytest.raises(pda.Interrupted) as caught:
        watch(
            pid=waiting_app.pid,
            when=pda.exception_type(IOE),
            dump_dir=str(tmp_path),
            max_dumps=2,
            timeout=120,
            on_event=on_event,
        )
    result = caught.value.result
    assert result.ended == "interrupted" and len(result.captures) == 1 and result.dumps == ()
    capture = result.captures[0]
    assert "interrupted" in (capture.dump_error or "") and "removed" in (capture.dump_error or "")
    assert not glob.glob(str(tmp_path / "*.core")) and not glob.glob(str(tmp_path / ".*"))
    with open(capture.record_path or "") as f:
        assert "interrupted" in json.load(f)["dump_error"]
    assert_target_free_and_working(waiting_app)
