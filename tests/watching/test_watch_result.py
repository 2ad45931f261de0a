"""WatchResult: its counts and its one line."""

from __future__ import annotations

import pydbgauto as pda
from pydbgauto.models import StopEvent
from pydbgauto.watching import MultiWatchResult, WatchResult


def test_watch_result_counts_failed_dumps_apart():
    capture = pda.CaptureRecord(
        event=StopEvent(kind="first-chance", sequence=1),
        decision=pda.DecisionRecord("dump", "matched", n=1),
        dump=None,
        dump_error="disk full",
    )
    result = WatchResult((capture,), (), "timeout", "/x.jsonl", 1.0, exceptions=7, matches=1)
    assert result.events_seen == 7 and result.dumps == ()
    assert "0 dumps written, 1 failed" in str(result)
    assert "interrupted (SIGTERM)" in str(WatchResult((), (), "interrupted", "/x", 0.1, signal=15))


def test_counts_come_from_the_decisions_when_not_given() -> None:
    decisions = (
        (StopEvent(kind="first-chance", sequence=1), pda.DecisionRecord("skip", "no-match")),
        (StopEvent(kind="first-chance", sequence=2), pda.DecisionRecord("dump", "matched", n=1)),
        (StopEvent(kind="exit", sequence=3), pda.DecisionRecord("skip", "no-match")),
    )
    result = WatchResult((), decisions, "exit", "/x.jsonl", 2.0, exit_status=0)
    assert result.events_seen == 2  # the exit is not an exception
    assert result.matched == 1
    assert str(result).startswith("2 exceptions seen, 1 matched, 0 dumps written; ended: exit after 2.0 s")


def test_the_runtimes_count_leads_the_line_where_it_is_known() -> None:
    counted = WatchResult((), (), "timeout", "/x.jsonl", 3.0, exceptions=2, matches=0, thrown=5000)
    assert counted.thrown == 5000
    assert str(counted).startswith("5000 exceptions thrown (the runtime's count), 2 exceptions seen, ")
    assert "5000 thrown (the runtime's count)" in pda.display.watch_result_markdown(counted)
    unknown = WatchResult((), (), "exit", "/x.jsonl", 3.0, exceptions=2, matches=0)
    assert unknown.thrown is None and "thrown" not in str(unknown)
    assert "thrown" not in pda.display.watch_result_markdown(unknown)


def test_every_processs_count_is_summed_only_when_each_is_known() -> None:
    def one(thrown):  # type: ignore[no-untyped-def]
        return WatchResult((), (), "timeout", "/x.jsonl", 1.0, exceptions=1, matches=0, thrown=thrown)

    both = MultiWatchResult("App", ((1, one(10)), (2, one(32))), (), "timeout", "/x.jsonl", 1.0)
    assert both.thrown == 42
    assert "watched: 42 exceptions thrown (the runtime's count), 2 exceptions seen" in str(both)
    partly = MultiWatchResult("App", ((1, one(10)), (2, one(None))), (), "timeout", "/x.jsonl", 1.0)
    assert partly.thrown is None and "thrown" not in str(partly)
    assert MultiWatchResult("App", (), (), "timeout", "/x.jsonl", 1.0).thrown is None
