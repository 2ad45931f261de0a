"""A predicate on a thin stop (pydbgauto/watching/thin.py): decided from the type, message and HResult the
debugger read, or told it needs the full stop as soon as it touches anything else."""

from __future__ import annotations

import pytest

import pydbgauto as pda
from pydbgauto import predicates as preds
from pydbgauto.models import ManagedException, StopEvent
from pydbgauto.stop_events import FIELDS_READ, UNPARSED
from pydbgauto.watching import evaluate_within, thin

IOE = "System.InvalidOperationException"


def event(message="database timeout", truncated=FIELDS_READ):  # type: ignore[no-untyped-def]
    exception = ManagedException(
        address=0x1000, type=IOE, message=message, hresult=0x80131509, truncated=truncated
    )
    return StopEvent(
        kind="first-chance",
        sequence=3,
        thread_id=7,
        exception_address=0x1000,
        exception=exception,
        type_chain=(IOE, "System.SystemException", "System.Exception"),
    )


def decide(predicate, stop=None):  # type: ignore[no-untyped-def]
    facts, touches = thin.facts_of(stop or event())
    verdict = evaluate_within(preds.as_predicate(predicate), facts, None, thin.evaluate)
    assert verdict is not None
    return None if thin.needed_more(verdict, touches) else verdict


def test_only_a_stop_the_debugger_read_is_thin():
    assert thin.applies(event()) and not thin.applies(event(truncated=UNPARSED))
    assert not thin.applies(StopEvent(kind="exit"))


@pytest.mark.parametrize(
    "predicate, matched",
    [
        (lambda exc: "timeout" in (exc.message or ""), True),
        (lambda exc: exc.type == "System.FormatException", False),
        (lambda exc: exc.hresult == 0x80131509 and exc.address == 0x1000, True),
        (lambda exc: isinstance(exc, ManagedException), True),  # it is one
        (
            preds.as_predicate(
                lambda e: e.type_chain[-1] == "System.Exception" and e.thread_id == 7, "event"
            ),
            True,
        ),
        (pda.exception_type(IOE) & (lambda exc: exc.message.startswith("data")), True),
        (pda.exception_type("System.SystemException", derived=True), True),
        (pda.message_matches("time") & pda.hresult(0x80131509), True),
    ],
)
def test_what_the_debugger_read_decides(predicate, matched):
    verdict = decide(predicate)
    assert verdict is not None and verdict.matched is matched and verdict.error is None


@pytest.mark.parametrize(
    "predicate",
    [
        lambda exc: exc.frames,
        lambda exc: exc.inner_type == "System.FormatException",
        lambda exc: exc.field("_paramName"),  # the object's fields are not read
        lambda exc: "x" in str(exc),  # its text is made of the frames too
        lambda exc: exc.stack_trace_string,
        preds.as_predicate(lambda event: event.stack is None, "event"),
        preds.as_predicate(lambda event: event.throw_site, "event"),
        pda.thrown_in("Orders"),
        pda.inner(pda.exception_type("System.FormatException")),
        pda.exception_type("System.Exception", derived=True) & pda.thrown_in("Orders"),
    ],
)
def test_anything_else_needs_the_full_stop(predicate):
    assert decide(predicate) is None


def test_a_swallowed_touch_still_counts():
    def careless(exc):  # type: ignore[no-untyped-def]
        try:
            return bool(exc.frames)
        except:  # noqa: E722 - what a careless predicate does
            return False

    assert decide(careless) is None


def test_an_error_on_what_was_read_is_an_error():
    verdict = decide(lambda exc: exc.message.lower(), event(message=None))
    assert verdict is not None and not verdict.matched and "AttributeError" in (verdict.error or "")


def test_an_exception_read_to_have_no_inner_decides_inner_predicates():
    from pydbgauto.stop_events import FIELDS_READ_NO_INNER

    stop = event(truncated=FIELDS_READ_NO_INNER)
    assert thin.applies(stop)
    verdict = decide(pda.inner(pda.exception_type("System.FormatException")), stop)
    assert verdict is not None and not verdict.matched  # no inner exception: cannot match
    verdict = decide(lambda exc: exc.inner_type is None and exc.inner_address is None, stop)
    assert verdict is not None and verdict.matched
    assert decide(lambda exc: exc.frames, stop) is None  # the rest is still not read
    # without that knowledge the inner chain needs the full read
    assert decide(pda.inner(pda.exception_type("System.FormatException"))) is None


def test_an_exception_kept_past_the_evaluation_says_what_was_not_read():
    kept = []

    def keep(exc):  # type: ignore[no-untyped-def]
        kept.append(exc)
        return False

    verdict = decide(keep)
    assert verdict is not None and not verdict.matched
    assert kept[0].message == "database timeout"  # what was read stays readable
    with pytest.raises(thin.NotRead, match="frames was not read"):
        kept[0].frames
    assert not hasattr(kept[0], "stack_trace_string")  # an AttributeError, as Python expects
    with pytest.raises(pda.PydbgautoError):
        kept[0].fields
