"""pydbgauto.policy: DumpPolicy checks; PolicyState decisions (tables, sequences, props). The name template
and file names are in tests/test_dumpnames.py."""

from __future__ import annotations

import math
import pathlib
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import attr
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import (
    DecisionRecord,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    StackFrame,
    StopEvent,
)
from pydbgauto.policy import (
    GIB,
    REASONS,
    Decision,
    DumpPolicy,
    PolicyState,
    stack_signature,
)

IOE = "System.InvalidOperationException"
SAFE = re.compile(r"[A-Za-z0-9._-]+")
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def event(
    seq: int = 1,
    type_: Optional[str] = IOE,
    address: Optional[int] = 0x1000,
    methods: Sequence[str] = ("App.Orders.Submit()", "App.Program.Main()"),
    kind: str = "first-chance",
    with_stack: bool = True,
) -> StopEvent:
    exc = ManagedException(
        address=address or 0,
        type=type_,
        message="m",
        frames=tuple(ExceptionFrame(sp=i, ip=i, module="App.dll", method=m) for i, m in enumerate(methods)),
    )
    stack = ManagedStack(
        os_thread_id=1,
        frames=tuple(StackFrame(sp=i, ip=i, call_site=m, method=m) for i, m in enumerate(methods)),
    )
    return StopEvent(
        kind=kind,
        sequence=seq,
        exception=None if kind == "exit" else exc,
        exception_address=None if kind == "exit" else address,
        stack=stack if with_stack else None,
    )


# ---------------------------------------------------------------------------------------------
# DumpPolicy: construction, validation


def test_defaults() -> None:
    p = DumpPolicy("/dumps")
    assert (p.name_template, p.max_dumps, p.skip_first, p.cooldown) == (
        "{process}_{pid}_{n}_{exception}_{time}.core",
        1,
        0,
        0.0,
    )
    assert p.dedupe_stack and p.dedupe_object and p.verify
    assert p.min_free_disk == GIB == 1 << 30
    assert p.kind == "full"
    assert p.needs == {"stack"}
    assert DumpPolicy("/d", dedupe_stack=False).needs == frozenset()


def test_dump_dir_path_like() -> None:
    assert DumpPolicy(pathlib.PurePosixPath("/var/dumps")).dump_dir == "/var/dumps"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"max_dumps": 0}, "max_dumps=0: give a whole number >= 1, or None"),
        ({"max_dumps": -1}, "max_dumps=-1"),
        ({"max_dumps": True}, "max_dumps=True"),
        ({"max_dumps": 1.5}, "max_dumps=1.5"),
        ({"skip_first": -1}, "skip_first=-1: give a whole number >= 0"),
        ({"skip_first": None}, "skip_first=None"),
        ({"cooldown": -0.5}, "cooldown=-0.5: give seconds >= 0"),
        ({"cooldown": math.nan}, "finite"),
        ({"cooldown": math.inf}, "finite"),
        ({"cooldown": "5"}, "finite number of seconds"),
        ({"min_free_disk": -1}, "min_free_disk=-1: give a number of bytes >= 0"),
        ({"min_free_disk": 1.5e9}, "min_free_disk"),
        ({"dedupe_stack": "yes"}, "dedupe_stack must be True or False"),
        ({"dedupe_object": 1}, "dedupe_object"),
        ({"verify": None}, "verify"),
        ({"dump_dir": ""}, "dump_dir must name a folder"),
        ({"dump_dir": None}, "dump_dir must name a folder"),
        ({"dump_dir": "/tmp/a\x00b"}, "control"),
        ({"dump_dir": "/tmp/a\nb"}, "line break"),
    ],
)
def test_bad_values_refused(kwargs: Dict[str, Any], words: str) -> None:
    args = {"dump_dir": "/dumps", **kwargs}
    with pytest.raises(ConfigurationError) as info:
        DumpPolicy(**args)
    assert words in str(info.value)


@pytest.mark.parametrize("kind", ["mini", "heap", "triage", "Full", ""])
def test_kind_other_than_full_says_who_supports_what(kind: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        DumpPolicy("/d", kind=kind)
    text = str(info.value)
    assert f"kind={kind!r}" in text
    assert "cdb" in text and ".dump /m" in text and "dotnet-dump" in text and "Use kind='full'" in text


def test_evolve_validates_again() -> None:
    p = DumpPolicy("/d")
    with pytest.raises(ConfigurationError):
        attr.evolve(p, skip_first=-3)
    with pytest.raises(attr.exceptions.FrozenInstanceError):
        p.max_dumps = 5  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Stack signatures


def test_stack_signature_from_throw_site_down() -> None:
    ev = event(
        methods=(
            "System.Runtime.EH.DispatchEx(System.Runtime.StackFrameIterator ByRef)",
            "A.f()",
            "A.g()",
            "A.h()",
            "A.i()",
            "A.j()",
            "A.k()",
        )
    )
    assert stack_signature(ev) == (IOE, "A.f()", "A.g()", "A.h()", "A.i()", "A.j()")


def test_stack_signature_skips_runtime_frames_and_uses_call_site() -> None:
    frames = (
        StackFrame(sp=1, ip=1, call_site="A.f()", method="A.f()"),
        StackFrame(sp=2, ip=None, call_site="[InlinedCallFrame: 2]", kind="runtime"),
        StackFrame(sp=3, ip=3, call_site="A.g()"),
    )
    ev = attr.evolve(event(), stack=ManagedStack(os_thread_id=1, frames=frames))
    assert stack_signature(ev) == (IOE, "A.f()", "A.g()")


def test_stack_signature_falls_back_to_exception_frames() -> None:
    assert stack_signature(event(methods=("B.x()",), with_stack=False)) == (IOE, "B.x()")
    assert stack_signature(event(methods=(), with_stack=False)) is None
    assert stack_signature(event(methods=())) is None
    assert stack_signature(event(kind="exit")) is None


# ---------------------------------------------------------------------------------------------
# Decisions: one table row per reason


def run(policy: DumpPolicy, steps: Sequence[Tuple[StopEvent, bool, float, Optional[int]]]) -> List[Decision]:
    state = PolicyState(policy)
    return [state.decide(ev, matched, now, disk) for ev, matched, now, disk in steps]


A1 = event(1, address=0x1000)
A2 = event(2, address=0x2000)  # another object, same stack as A1
B3 = event(3, address=0x3000, methods=("App.Other.Throw()",))  # another object and stack
A1_RETHROW = event(4, address=0x1000, methods=("App.Orders.Handler()", "App.Program.Main()"))
FREE = 10 * GIB


@pytest.mark.parametrize(
    "policy, steps, reason, detail",
    [
        (DumpPolicy("/d"), [(A1, False, 0, FREE)], "no-match", "did not match"),
        (DumpPolicy("/d"), [(A1, True, 0, FREE)], "matched", "dump 1 of 1"),
        (DumpPolicy("/d", max_dumps=None), [(A1, True, 0, FREE), (A1_RETHROW, True, 1, FREE)],
         "duplicate-object", "same exception object as matched event #1 (a rethrow)"),
        (DumpPolicy("/d", max_dumps=None), [(A1, True, 0, FREE), (A2, True, 1, FREE)],
         "duplicate-stack", "type and top frames of dump #1 (App.Orders.Submit() <- App.Program.Main())"),
        (DumpPolicy("/d", skip_first=1), [(A1, True, 0, FREE)], "skip-first", "match 1 of the first 1"),
        (DumpPolicy("/d"), [(A1, True, 0, FREE), (B3, True, 1, FREE)], "limit", "max_dumps=1"),
        (DumpPolicy("/d", max_dumps=None, cooldown=10), [(A1, True, 0, FREE), (B3, True, 9.5, FREE)],
         "cooldown", "9.5 s since dump #1, cooldown is 10 s"),
        (DumpPolicy("/d"), [(A1, True, 0, GIB - 1)], "disk", "1024.0 MiB free in the dump folder, "
         "min_free_disk is 1.0 GiB"),
        (DumpPolicy("/d"), [(event(kind="exit"), True, 0, FREE)], "no-match", "process exited"),
    ],
)  # fmt: skip
def test_each_reason(policy: DumpPolicy, steps: Any, reason: str, detail: str) -> None:
    decisions = run(policy, steps)
    last = decisions[-1]
    assert last.reason == reason
    assert detail in last.detail
    assert last.action == ("dump" if reason == "matched" else "skip")
    assert (last.n is not None) == (reason == "matched")


def test_first_check_wins_in_the_documented_order() -> None:
    # A rethrow that is also a stack duplicate, in cooldown, at the limit, disk full: duplicate-object wins
    policy = DumpPolicy("/d", max_dumps=1, cooldown=100)
    decisions = run(policy, [(A1, True, 0, FREE), (event(5, address=0x1000), True, 1, 0)])
    assert [d.reason for d in decisions] == ["matched", "duplicate-object"]
    # without object dedupe: the stack duplicate
    policy = attr.evolve(policy, dedupe_object=False)
    decisions = run(policy, [(A1, True, 0, FREE), (event(5, address=0x1000), True, 1, 0)])
    assert decisions[1].reason == "duplicate-stack"
    # a new stack: limit before cooldown before disk
    decisions = run(policy, [(A1, True, 0, FREE), (B3, True, 1, 0)])
    assert decisions[1].reason == "limit"
    policy = attr.evolve(policy, max_dumps=2)
    decisions = run(policy, [(A1, True, 0, FREE), (B3, True, 1, 0)])
    assert decisions[1].reason == "cooldown"
    decisions = run(policy, [(A1, True, 0, FREE), (B3, True, 101, 0)])
    assert decisions[1].reason == "disk"


# ---------------------------------------------------------------------------------------------
# Sequences with explicit clocks


def test_limit_sequence_and_done() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=2, dedupe_stack=False))
    out = []
    for i in range(5):
        assert state.done is (i >= 2)
        out.append(state.decide(event(i, address=0x1000 + i), True, float(i), FREE))
    assert [(d.action, d.reason, d.n) for d in out] == [
        ("dump", "matched", 1),
        ("dump", "matched", 2),
        ("skip", "limit", None),
        ("skip", "limit", None),
        ("skip", "limit", None),
    ]
    assert state.done
    assert state.summary() == {
        "events": 5,
        "matches": 5,
        "counted": 5,
        "dumps": 2,
        "reasons": {"limit": 3, "matched": 2},
    }


def test_unlimited_is_never_done() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, dedupe_stack=False))
    for i in range(50):
        assert state.decide(event(i, address=i + 1), True, 0, None).n == i + 1
    assert not state.done


def test_cooldown_sequence() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, cooldown=5, dedupe_stack=False))
    times = [100.0, 101.0, 104.999, 105.0, 106.0, 109.9, 110.0, 200.0]
    got = [state.decide(event(i, address=i + 1), True, t, FREE).reason for i, t in enumerate(times)]
    assert got == ["matched", "cooldown", "cooldown", "matched", "cooldown", "cooldown", "matched", "matched"]


def test_cooldown_with_clock_going_back_skips() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, cooldown=5, dedupe_stack=False))
    state.decide(event(1, address=1), True, 100.0, FREE)
    d = state.decide(event(2, address=2), True, 50.0, FREE)
    assert d.reason == "cooldown" and "0.0 s since dump #1" in d.detail


def test_no_cooldown_with_clock_going_back_dumps() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, dedupe_stack=False))
    state.decide(event(1, address=1), True, 100.0, FREE)
    assert state.decide(event(2, address=2), True, 50.0, FREE).reason == "matched"


def test_skip_first_sequence_unmatched_do_not_count() -> None:
    state = PolicyState(DumpPolicy("/d", skip_first=2, dedupe_stack=False))
    seq = [(1, False), (2, True), (3, False), (4, True), (5, True), (6, True)]
    got = [state.decide(event(s, address=s), m, float(s), FREE).reason for s, m in seq]
    assert got == ["no-match", "skip-first", "no-match", "skip-first", "matched", "limit"]


def test_skip_first_loop_at_one_site_still_gets_its_dump() -> None:
    # The same throw site, new exception objects: skipped matches do not "use up" the stack signature.
    state = PolicyState(DumpPolicy("/d", skip_first=2, max_dumps=None))
    got = [state.decide(event(s, address=0x100 * s), True, float(s), FREE).reason for s in range(1, 6)]
    assert got == ["skip-first", "skip-first", "matched", "duplicate-stack", "duplicate-stack"]


def test_rethrows_do_not_count_toward_skip_first() -> None:
    state = PolicyState(DumpPolicy("/d", skip_first=1, dedupe_stack=False))
    first = state.decide(A1, True, 0, FREE)
    rethrow = state.decide(A1_RETHROW, True, 1, FREE)
    new = state.decide(A2, True, 2, FREE)
    assert [first.reason, rethrow.reason, new.reason] == ["skip-first", "duplicate-object", "matched"]
    assert (state.matches, state.counted) == (3, 2)


def test_object_key_includes_type_and_needs_an_address() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, dedupe_stack=False))
    assert state.decide(event(1, address=0x1000), True, 0, FREE).reason == "matched"
    # the same address after a GC, holding another type: a new exception
    assert state.decide(event(2, type_="System.IO.IOException", address=0x1000), True, 1, FREE).dump
    # no address known: no object dedupe
    assert state.decide(event(3, address=None), True, 2, FREE).dump
    assert state.decide(event(4, address=None), True, 3, FREE).dump


def test_object_dedupe_off_dumps_rethrows() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, dedupe_stack=False, dedupe_object=False))
    assert state.decide(A1, True, 0, FREE).dump and state.decide(A1_RETHROW, True, 1, FREE).dump


def test_second_chance_of_a_dumped_first_chance_is_a_duplicate() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None))
    assert state.decide(A1, True, 0, FREE).dump
    crash = event(9, address=0x1000, kind="second-chance")
    assert state.decide(crash, True, 1, FREE).reason == "duplicate-object"


def test_unmatched_first_chance_does_not_hide_the_matched_second_chance() -> None:
    state = PolicyState(DumpPolicy("/d"))
    assert state.decide(A1, False, 0, FREE).reason == "no-match"
    assert state.decide(event(2, address=0x1000, kind="second-chance"), True, 1, FREE).dump


def test_disk_skips_keep_the_slot_and_unknown_disk_does_not_block() -> None:
    state = PolicyState(DumpPolicy("/d", dedupe_stack=False, min_free_disk=100))
    assert state.decide(event(1, address=1), True, 0, 99).reason == "disk"
    assert state.decide(event(2, address=2), True, 1, 100).n == 1
    state = PolicyState(DumpPolicy("/d"))
    assert state.decide(A1, True, 0, None).dump
    assert PolicyState(DumpPolicy("/d", min_free_disk=0)).decide(A1, True, 0, 0).dump


def test_stack_seen_only_when_dumped() -> None:
    # A cooldown skip does not record the stack: once the cooldown is over the same path is dumped.
    state = PolicyState(DumpPolicy("/d", max_dumps=None, cooldown=10))
    assert state.decide(B3, True, 0, FREE).dump
    assert state.decide(A1, True, 1, FREE).reason == "cooldown"
    assert state.decide(A2, True, 20, FREE).dump


def test_object_memory_is_bounded() -> None:
    state = PolicyState(DumpPolicy("/d", max_dumps=None, dedupe_stack=False, skip_first=10**6))
    for i in range(3000):
        state.decide(event(i, address=i + 1), True, 0, FREE)
    assert state.decide(event(9999, address=1), True, 0, FREE).reason == "skip-first"  # forgotten: counted
    assert state.decide(event(9999, address=3000), True, 0, FREE).reason == "duplicate-object"


@pytest.mark.parametrize(
    "args",
    [
        ("not an event", True, 0.0, None),
        (A1, 1, 0.0, None),
        (A1, True, math.nan, None),
        (A1, True, "0", None),
        (A1, True, 0.0, -1),
        (A1, True, 0.0, 1.5),
    ],
)
def test_decide_refuses_bad_arguments_and_records_nothing(args: Tuple[Any, ...]) -> None:
    state = PolicyState(DumpPolicy("/d"))
    with pytest.raises(TypeError):
        state.decide(*args)
    assert state.events == 0 and state.matches == 0


def test_state_needs_a_policy() -> None:
    with pytest.raises(ConfigurationError):
        PolicyState({"dump_dir": "/d"})  # type: ignore[arg-type]


def test_decision_is_the_one_decision_model() -> None:
    assert Decision is DecisionRecord  # what decide() answers with is what the records hold


def test_decision_values_checked_and_readable() -> None:
    with pytest.raises(ValueError):
        Decision("maybe", "matched")
    with pytest.raises(ValueError):
        Decision("skip", "bored")
    d = Decision("dump", "matched", "x: dump 1 of 1", 1)
    assert str(d) == "dump #1: x: dump 1 of 1"
    assert str(Decision("skip", "limit", "full")) == "skip (limit): full"
    assert d.to_dict() == {"action": "dump", "reason": "matched", "detail": "x: dump 1 of 1", "n": 1}


# ---------------------------------------------------------------------------------------------
# Properties over random policies and random streams of stops

policies = st.builds(
    DumpPolicy,
    st.just("/d"),
    st.just("{n}_{exception}.core"),
    st.one_of(st.none(), st.integers(1, 4)),
    st.integers(0, 4),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0, 50]),
)
steps = st.lists(
    st.tuples(
        st.sampled_from([IOE, "System.IO.IOException"]),
        st.one_of(st.none(), st.integers(1, 4)),  # few addresses: rethrows and reuse
        st.sampled_from([(), ("A.f()",), ("A.g()", "A.f()"), ("A.h()",)]),
        st.sampled_from(["first-chance", "second-chance", "exit"]),
        st.booleans(),  # matched
        st.floats(0, 3),  # time step
        st.one_of(st.none(), st.integers(0, 100)),  # free disk
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(policies, steps)
def test_decision_properties(policy: DumpPolicy, stream: List[Any]) -> None:
    state = PolicyState(policy)
    now = 0.0
    decisions = []
    dumps: List[Tuple[StopEvent, float]] = []
    for seq, (type_, address, methods, kind, matched, step, disk) in enumerate(stream, 1):
        now += step
        ev = event(seq, type_, address, methods, kind)
        was_done = state.done
        d = state.decide(ev, matched, now, disk)
        decisions.append(d)
        assert d.reason in REASONS
        if d.dump:
            assert not was_done
            assert matched and kind != "exit"
            assert disk is None or disk >= policy.min_free_disk
            dumps.append((ev, now))
    # every event got exactly one decision, and the counters agree
    assert len(decisions) == len(stream) == state.events == sum(state.reasons.values())
    assert state.matches == sum(1 for s in stream if s[4] and s[3] != "exit")
    assert state.dumps == len(dumps)
    # never more than max_dumps, numbered 1..k
    if policy.max_dumps is not None:
        assert len(dumps) <= policy.max_dumps
        assert state.done == (len(dumps) == policy.max_dumps)
    assert [d.n for d in decisions if d.dump] == list(range(1, len(dumps) + 1))
    # no dump before skip_first counted matches
    if dumps:
        assert state.counted > policy.skip_first
        first_dump = next(i for i, d in enumerate(decisions) if d.dump)
        skipped = sum(1 for d in decisions[:first_dump] if d.reason == "skip-first")
        assert skipped == policy.skip_first
    # cooldown between dumps
    for (_, t1), (_, t2) in zip(dumps, dumps[1:]):
        assert t2 - t1 >= policy.cooldown
    # dedupe: no two dumps of one object or one stack signature
    if policy.dedupe_object:
        keys = [(e.exception_address, e.exception_type) for e, _ in dumps if e.exception_address is not None]
        assert len(keys) == len(set(keys))
    if policy.dedupe_stack:
        sigs = [stack_signature(e) for e, _ in dumps]
        known = [s for s in sigs if s is not None]
        assert len(known) == len(set(known))
