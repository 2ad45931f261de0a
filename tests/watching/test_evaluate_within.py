"""A predicate under the watch's deadline, on a worker thread."""

from __future__ import annotations

import time

import pydbgauto as pda
from pydbgauto import predicates as preds
from pydbgauto.models import StopEvent
from pydbgauto.watching import evaluate_within


def test_predicate_deadline():
    exception = pda.ManagedException(address=0x1000, type="System.Exception", message="m")
    event = StopEvent(kind="first-chance", sequence=1, exception=exception)
    facts = preds.Facts(event=event)
    slow = preds.as_predicate(lambda exc: time.sleep(30))
    started = time.monotonic()
    assert evaluate_within(slow, facts, time.monotonic() + 0.5) is None
    assert time.monotonic() - started < 1.5
    raising = preds.as_predicate(lambda exc: 1 / 0)
    verdict = evaluate_within(raising, facts, time.monotonic() + 5)
    assert verdict is not None and not verdict.matched and "ZeroDivisionError" in (verdict.error or "")
    assert evaluate_within(preds.first_chance(), facts, None) == preds.Verdict(True)


def test_a_worker_serves_stop_after_stop_and_one_that_overran_is_replaced():
    """Kept workers (predicate_workers.py): stops in a row reuse one thread; a predicate still running
    past its deadline keeps its worker, and the next stop gets another."""
    import threading

    exception = pda.ManagedException(address=0x1000, type="System.Exception", message="m")
    facts = preds.Facts(event=StopEvent(kind="first-chance", sequence=1, exception=exception))
    seen = []
    record = preds.as_predicate(lambda exc: seen.append(threading.get_ident()) or False)
    for _ in range(50):
        assert evaluate_within(record, facts, time.monotonic() + 5) == preds.Verdict(False)
    assert len(set(seen)) == 1
    release = threading.Event()
    stuck = preds.as_predicate(lambda exc: release.wait(10))
    assert evaluate_within(stuck, facts, time.monotonic() + 0.1) is None
    seen.clear()
    assert evaluate_within(record, facts, time.monotonic() + 5) == preds.Verdict(False)
    release.set()


def test_a_quick_predicate_started_past_the_deadline_is_still_answered():
    """A stop that came as the watch's time ran out: a predicate of a few ms is not said to overrun."""
    exception = pda.ManagedException(address=0x1000, type="System.Exception", message="m")
    facts = preds.Facts(event=StopEvent(kind="first-chance", sequence=1, exception=exception))
    quick = preds.as_predicate(lambda exc: time.sleep(0.01) or True)
    assert evaluate_within(quick, facts, time.monotonic() - 1) == preds.Verdict(True)
    slow = preds.as_predicate(lambda exc: time.sleep(5))
    started = time.monotonic()
    assert evaluate_within(slow, facts, time.monotonic() - 1) is None
    assert time.monotonic() - started < 1.0
