"""The watch loop (predicates, policy, decision log, capture records) on recorded lldb sessions.

The debugger is the ReplayDriver TEST DOUBLE (tests/doubles/replay_driver.py): it answers with the real
SOS text recorded by scripts/record-watch-sessions from lldb + SOS and the sample app. No debugger runs.
The same cases run against the real debugger in tests/integration/test_watch.py.
"""

from __future__ import annotations

import json
import os

import pytest

import pydbgauto as pda
from tests.watch_cases import CASES as SHARED_CASES
from tests.watch_cases import throws_seen
from pydbgauto.watching import watch
from tests.doubles.replay_driver import ReplayDriver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSIONS = os.path.join(ROOT, "tests", "transcripts", "sessions")

CASES = dict(
    SHARED_CASES, callable=(lambda exc: "queue" in (exc.message or ""), ["System.InvalidOperationException"])
)


def replay(name: str, tmp_path, **kwargs):
    recording = os.path.join(SESSIONS, name + ".json")
    kwargs.setdefault("dump_dir", str(tmp_path))
    kwargs.setdefault("timeout", 60)
    return watch(launch=["ThrowingApp"], debugger=ReplayDriver.factory(recording), **kwargs)


@pytest.fixture(params=["net8", "net10"])
def runtime(request):
    return request.param


@pytest.mark.parametrize("case", sorted(CASES))
def test_predicates_select_exactly_their_throws(runtime, tmp_path, case):
    predicate, expected = CASES[case]
    result = replay(f"first-chance-{runtime}", tmp_path, when=predicate, max_dumps=5)
    assert result.ended == "exit"
    assert [c.exception.type for c in result.captures] == expected
    throws = throws_seen(runtime, recorded=True)
    with open(result.log_path) as f:
        log = [json.loads(line) for line in f]
    assert len(log) == throws + 1 and log[-1]["kind"] == "exit"
    for capture in result.captures:
        assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
        with open(capture.record_path) as f:
            record = pda.CaptureRecord.from_dict(json.load(f))
        assert record.exception == capture.exception and record.decision.reason == "matched"
        assert record.stack is not None and record.threads is not None


def test_rethrow_of_a_matched_object_is_a_duplicate(runtime, tmp_path):
    result = replay(
        f"first-chance-{runtime}", tmp_path, when=pda.exception_type("System.TimeoutException"), max_dumps=5
    )
    assert [d.reason for e, d in result.decisions if e.exception_type == "System.TimeoutException"] == [
        "matched",
        "duplicate-object",
    ]


@pytest.mark.parametrize(
    "options, expected",
    [
        (dict(skip_first=2, max_dumps=2, dedupe=False), ["skip-first", "skip-first", "matched", "matched"]),
        (
            dict(cooldown=3600, max_dumps=3, dedupe=False),
            ["matched", "cooldown", "cooldown", "cooldown", "cooldown", "cooldown"],
        ),
        (dict(max_dumps=3), ["matched"] + ["duplicate-stack"] * 5),
        (dict(min_free_disk=1 << 60, max_dumps=3), ["disk"] * 6),
    ],
)
def test_policy_on_a_repeating_throw(runtime, tmp_path, options, expected):
    result = replay(
        f"repeat-{runtime}", tmp_path, when=pda.exception_type("System.InvalidOperationException"), **options
    )
    assert [d.reason for e, d in result.decisions if e.kind != "exit"] == expected
    assert len(result.captures) == expected.count("matched")


def test_second_chance_of_a_crash(runtime, tmp_path):
    result = replay(f"crash-{runtime}", tmp_path, when=pda.second_chance())
    assert [(e.kind, d.reason) for e, d in result.decisions][:2] == [
        ("first-chance", "no-match"),
        ("second-chance", "matched"),
    ]
    assert result.captures[0].exception.message == "Unhandled: the service is going down"


def test_a_predicate_that_raises_does_not_stop_the_watch(runtime, tmp_path):
    def broken(exc):
        raise KeyError("user bug")

    result = replay(f"first-chance-{runtime}", tmp_path, when=broken)
    assert result.ended == "exit" and result.captures == ()
    with open(result.log_path) as f:
        log = [json.loads(line) for line in f]
    assert all("KeyError" in line.get("predicate_error", "") for line in log if line["kind"] != "exit")
