"""A callable decided as the target asks (pydbgauto/watching/asked.py): on the thin stop the ask carries,
once per throw; a stop that follows an ask gets the verdict already given."""

from __future__ import annotations

import threading
from typing import Any, List

import pytest

from pydbgauto import predicates as preds
from pydbgauto.drivers.base import AskedThrow
from pydbgauto.models import ManagedException, StopEvent
from pydbgauto.stop_events import FIELDS_READ
from pydbgauto.watching import asked as asked_module
from pydbgauto.watching import thin
from pydbgauto.watching.asked import GIVE_UP_AFTER, AskedThrows

IOE = "System.InvalidOperationException"
CHAIN = (IOE, "System.SystemException", "System.Exception")


def throw(message: str = "timeout", tid: int = 7, address: int = 0x1000) -> AskedThrow:
    return AskedThrow(tid, address, CHAIN, message, 0x80131509)


def stop_of(t: AskedThrow) -> StopEvent:
    exception = ManagedException(
        address=t.exception_address, type=IOE, message=t.message, truncated=FIELDS_READ
    )
    return StopEvent(
        kind="first-chance", thread_id=t.thread_id, exception_address=t.exception_address, exception=exception
    )


def asker(predicate: Any) -> AskedThrows:
    return AskedThrows(preds.as_predicate(predicate), threading.Lock(), 4242)


def test_a_throw_that_cannot_match_goes_on_and_the_predicate_sees_what_the_target_sent():
    seen: List[Any] = []
    a = asker(lambda exc: seen.append((exc.type, exc.message, exc.hresult, exc.address)) or False)
    assert a.decide(throw()) is True
    assert seen == [(IOE, "timeout", 0x80131509, 0x1000)]
    assert a.verdict_for(stop_of(throw())) is None  # nothing kept for a throw that went on
    assert (a.asked, a.let_go) == (1, 1)


def test_a_match_stops_and_its_stop_gets_the_verdict_once():
    calls: List[str] = []
    a = asker(lambda exc: calls.append(exc.message) or exc.message == "match")
    assert a.decide(throw("match")) is False
    verdict = a.verdict_for(stop_of(throw("match")))
    assert verdict is not None and verdict.matched
    assert a.verdict_for(stop_of(throw("match"))) is None  # once
    assert calls == ["match"]


def test_a_verdict_is_only_for_the_same_threads_same_object():
    a = asker(lambda exc: True)
    assert a.decide(throw(tid=7, address=0x1000)) is False
    assert a.verdict_for(stop_of(throw(tid=8, address=0x1000))) is None
    assert a.verdict_for(stop_of(throw(tid=7, address=0x2000))) is None  # popped: a later throw of thread 7


def test_a_predicate_that_touches_the_stack_stops_and_its_stop_reads_in_full():
    a = asker(preds.as_predicate(lambda event: event.stack is None, "event"))
    assert a.decide(throw()) is False
    assert a.verdict_for(stop_of(throw())) is thin.NEEDS_MORE


def test_a_predicate_that_keeps_needing_the_stop_ends_the_asking():
    a = asker(lambda exc: exc.frames)
    answers = [a.decide(throw(address=0x1000 + i)) for i in range(GIVE_UP_AFTER)]
    assert answers[:-1] == [False] * (GIVE_UP_AFTER - 1) and answers[-1] is None


def test_an_error_stops_and_is_left_for_the_stop_to_log():
    a = asker(lambda exc: 1 / 0)
    assert a.decide(throw()) is False
    assert a.verdict_for(stop_of(throw())) is None  # evaluated again at the stop, which logs the error


def test_while_the_watch_evaluates_at_a_stop_the_ask_waits_then_stops(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(asked_module, "LOCK_WAIT", 0.05)
    calls: List[str] = []
    a = asker(lambda exc: calls.append("x") or False)
    with a.lock:  # the watch's thread, evaluating the same predicate
        assert a.decide(throw()) is False
    assert calls == []
