"""A capture's after-resume work: nothing before the resume, exactly one of keep and drop, once."""

from __future__ import annotations

import threading
import time
from typing import List, Tuple

from pydbgauto import after_resume
from pydbgauto.after_resume import Pending


def _recorder(check_gate: "threading.Event | None" = None):  # type: ignore[no-untyped-def]
    calls: List[Tuple[str, object]] = []
    started = threading.Event()

    def check(pause: float) -> str:
        calls.append(("check", threading.current_thread().name))
        started.set()
        if check_gate is not None:
            check_gate.wait(10)
        return "checked"

    return (
        calls,
        started,
        check,
        lambda result: calls.append(("keep", result)),
        lambda p: calls.append(("drop", p)),
    )


def test_nothing_runs_before_the_resume_then_check_and_keep_on_their_own_thread():
    calls, started, check, keep, drop = _recorder()
    pending = Pending(time.monotonic(), check, keep, drop)
    assert not started.wait(0.2) and calls == []  # the target is still stopped: no reader runs
    pending.resumed()
    pending.finish()
    assert calls == [("check", "pydbgauto-after-resume"), ("keep", "checked")]
    assert pending.pause is not None and pending.pause >= 0


def test_a_cancel_before_the_check_drops_without_checking():
    calls, _, check, keep, drop = _recorder()
    pending = Pending(time.monotonic(), check, keep, drop)
    pending.cancel()
    pending.finish()
    assert [c[0] for c in calls] == ["drop"]


def _cancelled_during_its_check(gate: threading.Event):  # type: ignore[no-untyped-def]
    """A Pending whose check has begun (and waits on ``gate``) when it is cancelled."""
    calls, started, check, keep, drop = _recorder(gate)
    pending = Pending(time.monotonic(), check, keep, drop)
    pending.resumed()
    assert started.wait(10)
    pending.cancel()
    return pending, calls


def test_a_cancel_during_the_check_drops_once_it_ends():
    gate = threading.Event()
    pending, calls = _cancelled_during_its_check(gate)
    gate.set()
    pending.finish()
    assert [c[0] for c in calls] == ["check", "drop"]


def test_a_cancelled_check_that_overruns_is_dropped_by_the_caller_and_never_kept(monkeypatch):
    monkeypatch.setattr(after_resume, "CANCEL_GRACE", 0.1)
    gate = threading.Event()
    pending, calls = _cancelled_during_its_check(gate)
    pending.finish()  # gives up after the grace: the caller drops
    assert [c[0] for c in calls] == ["check", "drop"]
    gate.set()
    pending._thread.join(10)
    assert [c[0] for c in calls] == ["check", "drop"]  # the late check neither keeps nor drops again
