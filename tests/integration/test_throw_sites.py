"""A throw-site predicate (``thrown_in``) decided as the target asks (.NET 8; drivers/lldb/throw_sites.py)
on the real lldb + SOS and FilterApp: the stub sends the return addresses from the funnel's entry, the
agent names the throw site from the chain a stop once showed with that site, so a throw thrown where the
predicate does not look never stops the target, and each matching throw is one event (in each of the fast
filter's cases). On .NET 10 there is no question: every throw stops, and its throw site is named at the
stop from the same chain (read by lldb) instead of by clrstack. Stops are counted, not timed."""

from __future__ import annotations

import re
from typing import Any, Dict, List

import pytest

import pydbgauto as pda
from pydbgauto import Session

from .conftest import WaitingApp, tracer_of
from .test_fast_filter import app, filterapp, filterapp_builds  # noqa: F401 - fixtures
from .test_fast_filter import stats

pytestmark = pytest.mark.lldb

IOE = "System.InvalidOperationException"
MATCH_LAMBDA = r"Program\+<>c\.<Run>b__"  # the lambda of FilterApp's "match" (and "other", not sent here)


def question_of(s: Session) -> Dict[str, Any]:
    return stats(s)["inline_filter"].get("question") or {}  # type: ignore[no-any-return]


def test_a_throw_elsewhere_is_let_go_without_a_stop_and_a_match_is_one_event(
    waiting_app: WaitingApp, runtime: str, no_lldb_left: Any
) -> None:
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        s.set_filter(pda.thrown_in(MATCH_LAMBDA))
        events = []
        for batch in (["storm 3000", "match"], ["index", "storm 3000", "match"]):
            for line in batch:
                waiting_app.send(line)
            event = s.wait_for_event(120)
            assert event.kind == "first-chance" and event.exception is not None, event
            events.append(event)
        assert [e.exception.message for e in events] == ["match", "match"]
        assert all("<Run>b__" in (e.throw_site.method or "") for e in events)
        filtered = s.take_filtered()
        assert len(filtered) == 3000 + 1 + 3000  # every other throw is in the decision log, once
        assert len({f.exception_address for f in filtered}) == len(filtered)
        counts = stats(s)
        if runtime != "net8":  # every throw stops; its site is known from its chain, without clrstack
            assert counts["throw_site_known"] >= 6001 - 6, counts
            assert counts["commands"].get("clrstack", 0) <= 6, counts["commands"]
        else:
            question = question_of(s)
            answers = question["answers"]
            # Stops: until the field reader agrees with pe (at most 3), one to learn each throw site's
            # chain (the storm's, the bounds check's; a method tiered up again is a new chain), and
            # each match; every other throw is answered no.
            assert counts["filter_traps"] <= 3 + 2 + 2 + 2, counts
            assert answers["answered_no"] >= 6001 - 3 - 2 - 2, question
            assert answers["throw_sites"] >= 3 and answers["throw_sites_refused"] == 0, question
    assert tracer_of(waiting_app.pid) == 0
    assert waiting_app.wait_for_line("OK match", 60)


CASES = {
    # case: (the throw site's method, events)
    "cross": (r"<Cross>b__", 1),  # created on one thread, thrown on another
    "twice": (r"<Twice>b__", 2),  # the same object thrown twice
    "rethrow": (r"<Rethrow>b__", 2),  # thrown, then rethrown (throw;) in the same lambda
    "index": (r"Program\.IndexOut", 1),  # the runtime's, from a bounds check
    "nullref": (r"Program\.NullDeref", 1),  # the runtime's, from a fault
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_matching_throw_is_one_event(
    waiting_app: WaitingApp, runtime: str, case: str, no_lldb_left: Any
) -> None:
    """Warmed first (the question on, the other sites' chains learnt), then the case, then the end of the
    program: no other throw is an event."""
    site, expected = CASES[case]
    warm = [line for line in ("storm 3", "match", "index", "nullref", "storm 3000") if line != case]
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        s.set_filter(pda.thrown_in(site))
        for line in warm + [case, "exit"]:
            waiting_app.send(line)
        events: List[Any] = []
        while True:
            event = s.wait_for_event(120)
            if event.kind == "exit":
                break
            assert event.kind == "first-chance", event
            events.append(event)
            assert event.exception_address == s.exception().address  # a bare pe shows it
            asked = question_of(s) if runtime == "net8" else {}  # the page is read while it is there
        assert len(events) == expected, [str(e) for e in events]
        assert all(re.search(site, e.throw_site.method or "") for e in events), [str(e) for e in events]
        if runtime == "net8":  # the warm storm was asked about, with no stop
            assert asked["answers"]["answered_no"] >= 3000 - 6, asked
