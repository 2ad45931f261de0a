"""The full dump as the fast writer makes it, and the capture step's order around the target's pause.

A dump is written while the target is stopped (process_vm_readv into a reused buffer, zero blocks as
holes); verification, sha256 and the capture record follow once the target runs again, and the record
says how long the target was held (``dump.pause_seconds``). Times are never asserted, only their order
and what the target was doing.
"""

from __future__ import annotations

import os

import pytest

from pydbgauto.session import Session
from pydbgauto.verify import analyze

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
    reading = analyze(record.path, exception_address=event.exception_address, thread_id=event.thread_id)
    assert reading.exception is not None and reading.exception.type == event.exception.type
    assert reading.stack is not None and reading.stack.os_thread_id == event.thread_id
    assert not reading.warnings  # the diagnostic info page is there: no "not created by createdump"
