"""pydbgauto.predicates: each helper, the combinators, the callable rule, evaluate(), describe(), specs."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import ExceptionFrame, ManagedException, ManagedStack, StackFrame, StopEvent
from pydbgauto.predicates import (
    NEEDS,
    Facts,
    Predicate,
    Verdict,
    as_predicate,
    evaluate,
    exception_type,
    first_chance,
    from_spec,
    hresult,
    inner,
    message_matches,
    second_chance,
    thrown_in,
)

IOE = "System.InvalidOperationException"


def exc(
    type_: Optional[str] = IOE,
    message: Optional[str] = "The operation has timed out.",
    hresult_: Optional[int] = 0x80131509,
    frames: Sequence[str] = ("App.Orders.Submit(Int32)", "App.Program.Main(System.String[])"),
    address: int = 0x7F00_0000_1000,
) -> ManagedException:
    return ManagedException(
        address=address,
        type=type_,
        message=message,
        hresult=hresult_,
        frames=tuple(
            ExceptionFrame(sp=0x100 + i, ip=0x200 + i, module="App.dll", method=m)
            for i, m in enumerate(frames)
        ),
    )


def stack(*methods: str) -> ManagedStack:
    return ManagedStack(
        os_thread_id=0x1234,
        frames=tuple(
            StackFrame(sp=0x1000 + 8 * i, ip=0x2000 + i, call_site=m, method=m) for i, m in enumerate(methods)
        ),
    )


def event(
    kind: str = "first-chance",
    exception: Optional[ManagedException] = None,
    stack_: Optional[ManagedStack] = None,
    type_chain: Sequence[str] = (),
) -> StopEvent:
    e = exception if exception is not None else (exc() if kind != "exit" else None)
    return StopEvent(
        kind=kind,
        exception=e,
        exception_address=e.address if e else None,
        stack=stack_,
        type_chain=tuple(type_chain),
    )


EVENT = event()


# ---------------------------------------------------------------------------------------------
# Helpers one by one


def test_exception_type_exact_and_derived() -> None:
    chain = (IOE, "System.SystemException", "System.Exception")
    ev = event(type_chain=chain)
    assert exception_type(IOE).matches(ev)
    assert not exception_type("System.Exception").matches(ev)
    assert exception_type("System.Exception", derived=True).matches(ev)
    assert not exception_type("System.IO.IOException", derived=True).matches(ev)
    # derived without a chain filled in: only the exact type matches
    assert exception_type(IOE, derived=True).matches(event())
    assert not exception_type("System.Exception", derived=True).matches(event())
    # no exception at all
    assert not exception_type(IOE).matches(event("exit"))
    assert not exception_type(IOE[:-1]).matches(ev)  # no prefix matching


@pytest.mark.parametrize("bad", ["", " System.Exception", "System.Exception ", None, 3])
def test_exception_type_refuses_non_names(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        exception_type(bad)


def test_exception_type_refuses_non_bool_derived() -> None:
    with pytest.raises(ConfigurationError, match="derived"):
        exception_type(IOE, derived="yes")  # type: ignore[arg-type]


def test_message_matches_searches_and_none_never_matches() -> None:
    assert message_matches("timed out").matches(EVENT)
    assert message_matches(r"^The").matches(EVENT)
    assert not message_matches(r"^timed").matches(EVENT)  # search, anchored where the regex says
    assert not message_matches("TIMED").matches(EVENT)
    assert message_matches("TIMED", re.IGNORECASE).matches(EVENT)
    assert message_matches(re.compile("TIMED", re.I)).matches(EVENT)
    assert message_matches("(?i)TIMED").matches(EVENT)
    assert not message_matches("").matches(event(exception=exc(message=None)))
    assert not message_matches(".*").matches(event("exit"))


def test_message_matches_bad_regex_names_regex_and_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        message_matches("time(out")
    text = str(info.value)
    assert "'time(out'" in text and "missing )" in text


@pytest.mark.parametrize(
    "args, words",
    [
        ((re.compile("x"), re.I), "compiled"),
        ((re.compile(b"x"),), "bytes"),
        ((b"x",), "string"),
        (("x", "i"), "flags"),
        (("x", re.DEBUG), "not supported"),
    ],
)
def test_message_matches_refuses(args: Any, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        message_matches(*args)


@pytest.mark.parametrize(
    "code", [0x80131509, "0x80131509", "80131509", "0X80131509", " 0x80131509 ", -2146233079]
)
def test_hresult_forms(code: Any) -> None:
    assert hresult(code).matches(EVENT)
    assert hresult(code) == hresult(0x80131509)


def test_hresult_other_code_and_missing() -> None:
    assert not hresult(0x80131537).matches(EVENT)
    assert not hresult(0x80131509).matches(event(exception=exc(hresult_=None)))
    assert not hresult(0).matches(event("exit"))


@pytest.mark.parametrize(
    "bad", ["", "0x", "xyz", "0x1ffffffff", "-5", 2**32, -(2**31) - 1, True, 1.5, None]
)
def test_hresult_refuses(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="hresult"):
        hresult(bad)


@pytest.mark.parametrize(
    "frames, site, elsewhere",
    [
        (  # .NET 9+'s managed dispatch
            (
                "System.Runtime.EH.DispatchEx(System.Runtime.StackFrameIterator ByRef)",
                "App.Orders.Validate(App.Order)",
            ),
            r"^App\.Orders\.Validate\(",
            "DispatchEx",
        ),
        (  # .NET 9+: a bounds check's exception raised by a managed helper (native on .NET 8, never shown)
            (
                "System.Runtime.EH.DispatchEx(System.Runtime.StackFrameIterator ByRef, ExInfo ByRef)",
                "Internal.Runtime.CompilerHelpers.ThrowHelpers.ThrowIndexOutOfRangeException()",
                "FilterApp.Program.IndexOut(Int32[], Int32)",
            ),
            r"Program\.IndexOut",
            "ThrowHelpers",
        ),
    ],
    ids=["dispatch", "throw-helper"],
)
def test_thrown_in_uses_the_throw_site_past_the_runtimes_frames(
    frames: Any, site: str, elsewhere: str
) -> None:
    ev = event(stack_=stack(*frames, "App.Orders.Submit(Int32)"))
    assert thrown_in(site).matches(ev)
    assert not thrown_in(elsewhere).matches(ev)
    assert not thrown_in(r"Submit").matches(ev)  # only the throw site, not the whole stack
    assert ev.throw_site is not None and ev.throw_site.method == frames[-1]


def test_thrown_in_falls_back_to_exception_frames() -> None:
    assert thrown_in(r"Orders\.Submit").matches(event())  # no stack: the first frame of pe
    assert not thrown_in(r"Program\.Main").matches(event())
    assert not thrown_in(".*").matches(event(exception=exc(frames=())))
    assert not thrown_in(".*").matches(event("exit"))


def test_thrown_in_call_site_when_method_missing() -> None:
    frame = StackFrame(sp=1, ip=2, call_site="App.Weird.Site()", method=None)
    ev = event(stack_=ManagedStack(os_thread_id=1, frames=(frame,)))
    assert thrown_in("Weird").matches(ev)


def test_first_and_second_chance() -> None:
    assert first_chance().matches(event("first-chance"))
    assert not first_chance().matches(event("second-chance"))
    assert second_chance().matches(event("second-chance"))
    assert not second_chance().matches(event("exit"))


INNER1 = exc("System.IO.IOException", "disk", 0x80070070, ("App.Disk.Write()",), address=0x2000)
INNER2 = exc("System.Net.Sockets.SocketException", "refused", 0x80004005, ("App.Net.Connect()",), 0x3000)


def test_inner_looks_at_every_inner_exception_but_not_the_outer() -> None:
    facts = Facts(EVENT, (INNER1, INNER2))
    assert inner(exception_type("System.IO.IOException")).matches(facts)
    assert inner(exception_type("System.Net.Sockets.SocketException")).matches(facts)
    assert not inner(exception_type(IOE)).matches(facts)  # the outer one is not in the chain
    assert not inner(exception_type("System.IO.IOException")).matches(EVENT)  # nothing supplied
    # the inner exception's own throw site, not the outer thread's stack
    with_stack = Facts(event(stack_=stack("App.Outer.Site()")), (INNER1,))
    assert inner(thrown_in(r"Disk\.Write")).matches(with_stack)
    assert not inner(thrown_in(r"Outer")).matches(with_stack)
    # several conditions must hold for the same inner exception
    assert not inner(exception_type("System.IO.IOException") & message_matches("refused")).matches(facts)
    both = inner(exception_type("System.IO.IOException")) & inner(message_matches("refused"))
    assert both.matches(facts)


def test_inner_of_inner_walks_down_the_chain() -> None:
    facts = Facts(EVENT, (INNER1, INNER2))
    assert inner(inner(exception_type("System.Net.Sockets.SocketException"))).matches(facts)
    assert not inner(inner(exception_type("System.IO.IOException"))).matches(facts)


def test_inner_derived_uses_inner_type_chains() -> None:
    chains = (("System.IO.IOException", "System.SystemException", "System.Exception"),)
    pred = inner(exception_type("System.SystemException", derived=True))
    assert pred.matches(Facts(EVENT, (INNER1, INNER2), chains))
    assert not pred.matches(Facts(EVENT, (INNER1, INNER2)))
    assert pred.needs == {"inner", "type_chain"}


def test_inner_keeps_the_kind() -> None:
    facts = Facts(event("second-chance"), (INNER1,))
    assert inner(second_chance() & exception_type("System.IO.IOException")).matches(facts)


# ---------------------------------------------------------------------------------------------
# Combinators, needs


def test_and_or_not() -> None:
    t, f = exception_type(IOE), exception_type("X")
    assert (t & t).matches(EVENT) and not (t & f).matches(EVENT) and not (f & t).matches(EVENT)
    assert (t | f).matches(EVENT) and (f | t).matches(EVENT) and not (f | f).matches(EVENT)
    assert (~f).matches(EVENT) and not (~t).matches(EVENT)
    assert (~(f | ~t)).matches(EVENT)


def test_combinators_take_plain_callables_on_either_side() -> None:
    t = exception_type(IOE)
    assert (t & (lambda e: "timed" in e.message)).matches(EVENT)
    assert ((lambda e: "timed" in e.message) & t).matches(EVENT)
    assert not ((lambda e: False) | ~t).matches(EVENT)
    with pytest.raises(ConfigurationError, match="not a predicate"):
        t & "System.Exception"  # noqa: B018


def test_and_short_circuits() -> None:
    calls: List[Any] = []
    pred = exception_type("X") & (lambda e: calls.append(e) or True)
    assert not pred.matches(EVENT)
    assert calls == []
    pred2 = exception_type(IOE) | (lambda e: calls.append(e) or True)
    assert pred2.matches(EVENT)
    assert calls == []


def test_flattening() -> None:
    a, b, c = exception_type("A"), exception_type("B"), exception_type("C")
    assert (a & b) & c == a & (b & c)
    assert ((a & b) & c).to_spec() == {"op": "all", "predicates": [a.to_spec(), b.to_spec(), c.to_spec()]}
    assert ((a | b) & c).to_spec()["predicates"][0]["op"] == "any"  # type: ignore[index]


def test_needs() -> None:
    assert exception_type(IOE).needs == frozenset()
    assert exception_type(IOE, derived=True).needs == {"type_chain"}
    assert thrown_in("x").needs == {"stack"}
    assert inner(message_matches("x")).needs == {"inner"}
    assert message_matches("x").needs == hresult(1).needs == first_chance().needs == frozenset()
    assert (thrown_in("x") | ~exception_type("E", derived=True)).needs == {"stack", "type_chain"}
    assert (first_chance() & (lambda e: True)).needs == NEEDS == {"stack", "type_chain", "inner"}


# ---------------------------------------------------------------------------------------------
# Plain callables: which argument they get


def takes_event(ev: StopEvent) -> bool:
    return ev.kind == "first-chance"


def takes_optional_exception(e: Optional[ManagedException]) -> bool:
    return e is not None and e.type == IOE


def takes_facts(f: Facts) -> bool:
    return len(f.inner_exceptions) == 2


def takes_other(x: int) -> bool:
    return isinstance(x, ManagedException)


class CallableObject:
    def __call__(self, ev: StopEvent) -> bool:
        return ev.kind == "first-chance"


def test_callable_rule_by_annotation() -> None:
    # this module uses `from __future__ import annotations`: the annotations are strings here
    assert as_predicate(takes_event).matches(EVENT)
    assert as_predicate(takes_optional_exception).matches(EVENT)
    assert as_predicate(takes_facts).matches(Facts(EVENT, (INNER1, INNER2)))
    assert as_predicate(takes_other).matches(EVENT)  # another annotation: the exception
    assert as_predicate(CallableObject()).matches(EVENT)
    assert as_predicate(lambda e: isinstance(e, ManagedException)).matches(EVENT)


def test_callable_rule_unresolvable_string_annotation() -> None:
    def f(ev: "NotImportedHere.StopEvent") -> bool:  # type: ignore[name-defined]  # noqa: F821
        return isinstance(ev, StopEvent)

    assert as_predicate(f).matches(EVENT)


def test_callable_rule_with_real_annotations() -> None:
    def on_event(ev):  # type: ignore[no-untyped-def]
        return isinstance(ev, StopEvent)

    def on_facts(f):  # type: ignore[no-untyped-def]
        return isinstance(f, Facts)

    on_event.__annotations__ = {"ev": StopEvent}  # as without `from __future__ import annotations`
    on_facts.__annotations__ = {"f": Optional[Facts]}
    assert as_predicate(on_event).matches(EVENT)
    assert as_predicate(on_facts).matches(EVENT)


def test_no_truth_value() -> None:
    with pytest.raises(TypeError, match="combine predicates with &"):
        exception_type(IOE) and first_chance()  # noqa: B018
    with pytest.raises(TypeError):
        not first_chance()  # noqa: B018


def test_callable_rule_takes_overrides() -> None:
    assert as_predicate(lambda ev: ev.kind == "first-chance", takes="event").matches(EVENT)
    assert as_predicate(lambda f: f.event is EVENT, takes="facts").matches(EVENT)
    with pytest.raises(ConfigurationError, match="takes="):
        as_predicate(lambda x: True, takes="thread")
    with pytest.raises(ConfigurationError, match="plain callables"):
        as_predicate(first_chance(), takes="event")


def test_exception_callable_is_not_called_without_exception() -> None:
    calls: List[Any] = []
    pred = as_predicate(lambda e: calls.append(e) or True)
    assert not pred.matches(event("exit"))
    assert calls == []


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda: True, "no argument"),
        (lambda a, b: True, "2 required"),
        (42, "not a predicate"),
        (None, "not"),
    ],
)
def test_as_predicate_refuses(bad: Any, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        as_predicate(bad)


def test_as_predicate_accepts_optional_extra_args_and_varargs() -> None:
    assert as_predicate(lambda e, limit=3: True).matches(EVENT)
    assert as_predicate(lambda *args: len(args) == 1).matches(EVENT)
    p = exception_type(IOE)
    assert as_predicate(p) is p


def test_callable_result_is_truthiness() -> None:
    assert as_predicate(lambda e: "non-empty").matches(EVENT)
    assert not as_predicate(lambda e: None).matches(EVENT)


# ---------------------------------------------------------------------------------------------
# evaluate()


def test_matches_propagates_but_evaluate_reports() -> None:
    def broken(e: ManagedException) -> bool:
        return 1 / 0 > 0

    pred = exception_type(IOE) & broken
    with pytest.raises(ZeroDivisionError):
        pred.matches(EVENT)
    verdict = evaluate(pred, Facts(EVENT))
    assert verdict.matched is False
    assert verdict.error is not None
    assert verdict.error.startswith("ZeroDivisionError: division by zero")
    assert "test_predicates.py" in verdict.error and "broken" in verdict.error
    assert "exception_type('System.InvalidOperationException')" in verdict.error


def test_evaluate_ok() -> None:
    assert evaluate(exception_type(IOE), EVENT) == Verdict(True, None)
    assert evaluate(exception_type("X"), Facts(EVENT)) == Verdict(False, None)


def test_matches_refuses_other_input() -> None:
    with pytest.raises(TypeError):
        exception_type(IOE).matches("System.InvalidOperationException")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# describe()


@pytest.mark.parametrize(
    "pred, text",
    [
        (
            exception_type(IOE) & message_matches("timeout"),
            "exception_type('System.InvalidOperationException') & message_matches('timeout')",
        ),
        (exception_type("E", derived=True), "exception_type('E', derived=True)"),
        (
            (exception_type("A") | exception_type("B")) & first_chance(),
            "(exception_type('A') | " "exception_type('B')) & first_chance()",
        ),
        (
            exception_type("A") | exception_type("B") & first_chance(),
            "exception_type('A') | " "exception_type('B') & first_chance()",
        ),
        (~(first_chance() & hresult("80131509")), "~(first_chance() & hresult(0x80131509))"),
        (~~second_chance(), "~~second_chance()"),
        (inner(thrown_in(r"^App\.")), "inner(thrown_in('^App\\\\.'))"),
        (message_matches("x", re.I | re.S), "message_matches('x', re.IGNORECASE | re.DOTALL)"),
    ],
)
def test_describe(pred: Predicate, text: str) -> None:
    assert pred.describe() == text
    assert repr(pred) == text


def test_describe_callable_names_it() -> None:
    assert (first_chance() & takes_event).describe() == "first_chance() & <takes_event(event)>"


# ---------------------------------------------------------------------------------------------
# Specs


def test_spec_format() -> None:
    pred = (
        (exception_type(IOE) & message_matches("timeout", re.I))
        | inner(hresult(-2146233079))
        | ~(first_chance() | second_chance() | thrown_in("^App"))
    )
    spec = pred.to_spec()
    assert spec == {
        "op": "any",
        "predicates": [
            {
                "op": "all",
                "predicates": [
                    {"op": "exception_type", "name": IOE, "derived": False},
                    {"op": "message_matches", "regex": "timeout", "flags": "i"},
                ],
            },
            {"op": "inner", "predicate": {"op": "hresult", "code": 0x80131509}},
            {
                "op": "not",
                "predicate": {
                    "op": "any",
                    "predicates": [
                        {"op": "first_chance"},
                        {"op": "second_chance"},
                        {"op": "thrown_in", "regex": "^App", "flags": ""},
                    ],
                },
            },
        ],
    }
    assert json.loads(json.dumps(spec)) == spec
    assert from_spec(spec) == pred


def test_spec_none_with_callable() -> None:
    assert (first_chance() & (lambda e: True)).to_spec() is None
    assert inner(~as_predicate(lambda e: True)).to_spec() is None


def test_spec_defaults_and_single_child() -> None:
    assert from_spec({"op": "exception_type", "name": IOE}) == exception_type(IOE)
    assert from_spec({"op": "message_matches", "regex": "x"}) == message_matches("x")
    one = from_spec({"op": "all", "predicates": [{"op": "first_chance"}]})
    assert one.matches(EVENT) and one.describe() == "first_chance()"


@pytest.mark.parametrize(
    "spec, words",
    [
        ("first_chance", "must be a dict"),
        ({"op": "lambda"}, "op 'lambda'"),
        ({}, "op None"),
        ({"op": "first_chance", "x": 1}, "unknown keys \\['x'\\]"),
        ({"op": "exception_type"}, "lacks \\['name'\\]"),
        ({"op": "message_matches", "regex": "(", "flags": ""}, "does not compile"),
        ({"op": "message_matches", "regex": "x", "flags": "L"}, "flag letter 'L'"),
        ({"op": "message_matches", "regex": 3}, "must be a string"),
        ({"op": "hresult", "code": "0x80131509"}, "must be an int"),
        ({"op": "hresult", "code": 2**40}, "32 bits"),
        ({"op": "all", "predicates": []}, "non-empty list"),
        ({"op": "any", "predicates": {"op": "first_chance"}}, "non-empty list"),
        ({"op": "not", "predicate": {"op": "nope"}}, "spec.predicate has op 'nope'"),
        ({"op": "exception_type", "name": IOE, "derived": 1}, "derived"),
    ],
)
def test_from_spec_refuses(spec: Any, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        from_spec(spec)


def test_from_spec_depth_limit() -> None:
    spec: Dict[str, Any] = {"op": "first_chance"}
    for _ in range(150):
        spec = {"op": "not", "predicate": spec}
    with pytest.raises(ConfigurationError, match="deeper"):
        from_spec(spec)


# Random predicate trees and random facts --------------------------------------------------------

TYPES = [IOE, "System.IO.IOException", "System.Exception", "System.SystemException", "App.OrderError"]
MESSAGES = [None, "The operation has timed out.", "disk full", "Timeout: retry", ""]
METHODS = ["App.Orders.Submit(Int32)", "App.Disk.Write()", "System.IO.File.Open()", "App.Program.Main()"]
REGEXES = ["time", "^The", "out\\.$", "(?i)TIMEOUT", "^App\\.", "Write|Open", "full"]
HRESULTS = [0x80131509, 0x80070070, 0x80004005]

leaves = st.one_of(
    st.builds(exception_type, st.sampled_from(TYPES), st.booleans()),
    st.builds(message_matches, st.sampled_from(REGEXES), st.sampled_from([0, re.I, re.M | re.S])),
    st.builds(thrown_in, st.sampled_from(REGEXES), st.sampled_from([0, re.I])),
    st.builds(hresult, st.sampled_from(HRESULTS)),
    st.just(first_chance()),
    st.just(second_chance()),
)
predicates = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(inner, children),
        children.map(lambda p: ~p),
        st.tuples(children, children).map(lambda ab: ab[0] & ab[1]),
        st.tuples(children, children).map(lambda ab: ab[0] | ab[1]),
    ),
    max_leaves=8,
)

exceptions = st.builds(
    exc,
    st.one_of(st.none(), st.sampled_from(TYPES)),
    st.sampled_from(MESSAGES),
    st.one_of(st.none(), st.sampled_from(HRESULTS)),
    st.lists(st.sampled_from(METHODS), max_size=2),
    st.integers(0x1000, 0x1010),
)
chains = st.lists(st.sampled_from(TYPES), max_size=3, unique=True)


@st.composite
def facts_strategy(draw: Any) -> Facts:
    kind = draw(st.sampled_from(["first-chance", "second-chance", "exit"]))
    e = None if kind == "exit" else draw(exceptions)
    stk = draw(st.one_of(st.none(), st.lists(st.sampled_from(METHODS), max_size=3).map(lambda m: stack(*m))))
    ev = StopEvent(kind=kind, exception=e, stack=stk, type_chain=tuple(draw(chains)))
    inners = draw(st.lists(exceptions, max_size=3))
    inner_chains = draw(st.lists(chains, max_size=len(inners)))
    return Facts(ev, tuple(inners), tuple(tuple(c) for c in inner_chains))


def oracle(spec: Dict[str, Any], facts: Facts) -> bool:
    """An independent reading of the spec format, written from the module docstring."""
    ev, e = facts.event, facts.event.exception
    op = spec["op"]
    if op == "exception_type":
        return (e is not None and e.type == spec["name"]) or (
            spec["derived"] and spec["name"] in ev.type_chain
        )
    if op in ("message_matches", "thrown_in"):
        flags = 0
        for letter in spec["flags"]:
            flags |= {"a": re.A, "i": re.I, "m": re.M, "s": re.S, "x": re.X}[letter]
        if op == "message_matches":
            text = e.message if e is not None else None
        else:
            managed = [
                f
                for f in (ev.stack.frames if ev.stack else ())
                if not f.call_site.startswith("System.Runtime.EH.")
            ]
            if managed:
                text = managed[0].method or managed[0].call_site
            else:
                text = e.frames[0].method if e is not None and e.frames else None
        return text is not None and re.search(spec["regex"], text, flags) is not None
    if op == "hresult":
        return e is not None and e.hresult == spec["code"]
    if op in ("first_chance", "second_chance"):
        return ev.kind == op.replace("_", "-")
    if op == "not":
        return not oracle(spec["predicate"], facts)
    if op == "all":
        return all(oracle(s, facts) for s in spec["predicates"])
    if op == "any":
        return any(oracle(s, facts) for s in spec["predicates"])
    assert op == "inner"
    for i, ie in enumerate(facts.inner_exceptions):
        chain = facts.inner_type_chains[i] if i < len(facts.inner_type_chains) else ()
        sub_event = StopEvent(kind=ev.kind, exception=ie, stack=None, type_chain=chain)
        sub = Facts(sub_event, facts.inner_exceptions[i + 1 :], facts.inner_type_chains[i + 1 :])
        if oracle(spec["predicate"], sub):
            return True
    return False


NAMESPACE = {
    "re": re,
    "exception_type": exception_type,
    "message_matches": message_matches,
    "thrown_in": thrown_in,
    "hresult": hresult,
    "inner": inner,
    "first_chance": first_chance,
    "second_chance": second_chance,
}


@settings(max_examples=300, deadline=None)
@given(predicates, st.lists(facts_strategy(), min_size=1, max_size=5))
def test_spec_round_trip_gives_the_same_answers(pred: Predicate, many: List[Facts]) -> None:
    spec = pred.to_spec()
    assert spec is not None
    again = from_spec(json.loads(json.dumps(spec)))
    assert again == pred
    assert again.to_spec() == spec
    assert again.needs == pred.needs
    described = eval(pred.describe(), NAMESPACE)  # describe() reads as the Python that builds it
    assert described.to_spec() == spec
    for facts in many:
        expected = oracle(spec, facts)
        assert pred.matches(facts) is expected
        assert again.matches(facts) is expected


@settings(max_examples=100, deadline=None)
@given(predicates)
def test_needs_cover_what_the_tree_uses(pred: Predicate) -> None:
    text = json.dumps(pred.to_spec())
    assert ('"derived": true' in text) <= ("type_chain" in pred.needs)
    assert ('"thrown_in"' in text) <= ("stack" in pred.needs)
    assert ('"inner"' in text) == ("inner" in pred.needs)
    assert pred.needs <= NEEDS
