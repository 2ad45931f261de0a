"""Attaching to a process that has been throwing for a while: the user's real target (issue 9).

Before the attach the sample app throws bursts of exceptions, so tiered compilation has replaced the
runtime's exception-dispatch code (CoreLib's DispatchEx goes tier-1 after ~30 calls, OSR in between).
Every throw after the attach must stop exactly once, with the exception as the thread's current
exception (a bare `pe`, `clrthreads`), live and in the dump; and the target's mappings must be as before.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Dict, List

import pytest

import pydbgauto as pda
from pydbgauto import Session
from pydbgauto.errors import DebuggerTimeoutError
from pydbgauto.readers import dotnet_dump

from .conftest import WaitingApp, throw_lines, tracer_of

pytestmark = [pytest.mark.lldb]


def warm_up(app: WaitingApp, bursts: int = 4, each: int = 100) -> int:
    """Bursts of throws with pauses (as a service throws), then time for the tier-1 JIT to finish."""
    for i in range(bursts):
        app.send(f"repeat {each}")
        wait_for_count(app, f"OK repeat {each}", i + 1)
        time.sleep(0.4)
    time.sleep(1.5)
    return len(throw_lines(app.lines))


def wait_for_count(app: WaitingApp, line: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for seen in list(app.lines) if seen == line) < count:
        assert time.monotonic() < deadline, f"no {count}x {line!r} from the app: {app.lines[-3:]}"
        time.sleep(0.05)


def maps_of(pid: int) -> List[str]:
    """The target's mappings with their protections (what a debugger must leave as it found)."""
    with open(f"/proc/{pid}/maps") as f:
        return [" ".join(line.split()[:2]) for line in f]


def test_warm_attach_every_throw_stops_once_with_pe_on_the_thread(waiting_app, runtime, no_lldb_left):
    before = warm_up(waiting_app)
    assert before == 400
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("repeat 50")
        events = [s.wait_for_event(60, parse=False) for _ in range(50)]
        assert all(e.kind == "first-chance" and e.exception_address for e in events)
        assert len({e.exception_address for e in events}) == 50  # 50 distinct objects, none doubled
        waiting_app.send("invalid-op")
        ev = s.wait_for_event(60)
        # The classic workflow at the stop: a bare pe and clrthreads show the new exception.
        bare = s.exception()
        assert bare is not None and bare.address == ev.exception_address
        assert bare.type == "System.InvalidOperationException"
        row = [t for t in s.threads().threads if t.os_id == ev.thread_id]
        assert row and row[0].exception_address == ev.exception_address, s.execute("clrthreads")
        assert ev.throw_site is not None and "ThrowInvalidOperation" in (ev.throw_site.method or "")
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(2)  # nothing doubled
    assert tracer_of(waiting_app.pid) == 0
    assert len(throw_lines(waiting_app.finish())) == before + 51


@pytest.mark.slow
def test_attach_while_tiering_then_1000_throws(waiting_app, runtime, no_lldb_left):
    """Attach after one short burst (DispatchEx mid-way through tiering: OSR and tier-1 versions are
    made while attached), then 1000 throws: exactly 1000 events."""
    waiting_app.send("repeat 40")
    assert waiting_app.wait_for_line("OK repeat 40", 60)
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("repeat 1000")
        seen = 0
        for _ in range(1000):
            event = s.wait_for_event(60, parse=False)
            assert event.kind == "first-chance" and event.exception_address
            seen += 1
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(2)
    assert seen == 1000
    assert len(throw_lines(waiting_app.finish())) == 1040


def test_maps_unchanged_after_a_session(waiting_app, runtime, no_lldb_left):
    """No protection change outlives the session (the runtime relies on W^X)."""
    warm_up(waiting_app, bursts=2)
    before = maps_of(waiting_app.pid)
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("repeat 60")
        for _ in range(60):
            s.wait_for_event(60, parse=False)
    assert waiting_app.wait_for_line("OK repeat 60", 60)
    after = maps_of(waiting_app.pid)
    # The runtime itself may map memory meanwhile; nothing may have gained write+execute.
    assert [m for m in after if "rwx" in m] == [m for m in before if "rwx" in m]
    changed = {m.split()[0]: m.split()[1] for m in after if m not in before}
    assert not [r for r, perms in changed.items() if "w" in perms and "x" in perms], changed
    assert waiting_app.finish()[-1].startswith("DONE")


def test_threads_throwing_first_exceptions_at_once(app, runtime, no_lldb_left):
    """Several threads' first throws of a just-started process at the same instant: all seen."""
    for _ in range(3):
        with Session.launch([app, "threads", "8"]) as s:
            s.break_on_clr_exceptions()
            kinds = []
            while True:
                ev = s.wait_for_event(60, parse=False)
                if ev.kind == "exit":
                    break
                kinds.append((ev.kind, ev.thread_id))
        assert len(kinds) == 8, kinds
        assert len({tid for _, tid in kinds}) == 8


def test_dump_at_warm_stop_shows_the_exception_to_an_independent_reader(
    waiting_app, runtime, tmp_path, no_lldb_left
):
    warm_up(waiting_app, bursts=3)
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("invalid-op")
        ev = s.wait_for_event(60)
        rec = s.dump(str(tmp_path / "warm.core"))
    assert rec.verified, rec.verify_error
    assert rec.reader_warnings == (), rec.reader_warnings  # the diagnostic info page is there
    # The classic workflow in the dump: a bare pe on the default thread, and clrthreads.
    reading = dotnet_dump.read(rec.path)
    assert reading.exception is not None and reading.exception.address == ev.exception_address
    assert reading.threads is not None
    row = [t for t in reading.threads.threads if t.os_id == ev.thread_id]
    assert row and row[0].exception_address == ev.exception_address
    # The reader's stack of the thread carries file and line.
    assert rec.seen_stack is not None
    assert any(
        f.source_file and f.source_file.endswith("Program.cs") and f.line for f in rec.seen_stack.frames
    )
    assert waiting_app.finish()[-1].startswith("DONE")


def test_watch_after_warm_attach_accounts_for_every_throw(waiting_app, runtime, tmp_path, no_lldb_left):
    """The decision log has one line per throw after the attach, checked against the app's own count;
    the matching one is dumped, its capture record's frames carry file and line."""
    before = warm_up(waiting_app, bursts=3)
    result: Dict[str, pda.WatchResult] = {}

    def run() -> None:
        result["r"] = pda.watch(
            pid=waiting_app.pid,
            when=pda.exception_type("ThrowingApp.OrderRejectedException"),
            dump_dir=str(tmp_path),
            max_dumps=1,
            timeout=120,
            on_event=lambda kind, data: armed.set() if kind == "armed" else None,
        )

    armed = threading.Event()
    worker = threading.Thread(target=run)
    worker.start()
    assert armed.wait(60)
    waiting_app.send("repeat 30")
    assert waiting_app.wait_for_line("OK repeat 30", 60)
    waiting_app.send("custom")
    worker.join(180)
    assert not worker.is_alive()
    r = result["r"]
    assert len(r.captures) == 1, r
    capture = r.captures[0]
    assert capture.exception is not None and capture.exception.type == "ThrowingApp.OrderRejectedException"
    assert capture.dump is not None and capture.dump.verified, capture.dump
    assert capture.stack is not None and any(f.line for f in capture.stack.frames)
    with open(r.log_path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    exceptions = [line for line in lines if line.get("kind") == "first-chance"]
    assert len(exceptions) == 31, lines[-3:]
    assert sum(1 for line in exceptions if line["exception_type"] == "System.InvalidOperationException") == 30
    assert len(throw_lines(waiting_app.finish())) == before + 31
    assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
