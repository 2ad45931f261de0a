"""Deciding a stop from what the debugger read of the exception object alone: its type, message and
HResult (``stop_events.FIELDS_READ``), before any SOS command.

A plain callable cannot run in the debugger, so every throw comes back to Python; reading ``pe``,
``clrstack`` and the inner chain for each cost ~10 ms a stop. Most callables look at the type and the
message only. So the predicate is first evaluated on a *thin* stop whose unread parts (the stack, the
inner exceptions, the exception's frames, fields, raw text, ...) raise :class:`NeedsMore` when touched;
a predicate that touched none of them has decided. One that did is evaluated again on the full stop
(SOS reads it then): what it did before it touched them happens twice. The worker thread and the time
limit are predicate_workers.evaluate_within's, with :func:`evaluate` in place of predicates.evaluate.

NeedsMore is a BaseException, so a callable's ``except Exception`` does not swallow it; one swallowed
anyway (a bare ``except:``) is still noticed, the touch is recorded before it is raised. A thin object the
predicate kept and reads after its evaluation raises :class:`NotRead` (an AttributeError) saying so.
"""

from __future__ import annotations

from typing import Any, FrozenSet, List, Tuple

import attr

from pydbgauto import predicates as preds
from pydbgauto.errors import PydbgautoError
from pydbgauto.models import ManagedException, StopEvent
from pydbgauto.stop_events import FIELDS_READ, FIELDS_READ_NO_INNER

# What the debugger read: the rest is not there (the inner exception too, unless it read that there is none)
READ_EXCEPTION: FrozenSet[str] = frozenset({"address", "type", "message", "hresult"})
READ_NO_INNER: FrozenSet[str] = READ_EXCEPTION | {"inner_type", "inner_address"}
NOT_READ_EVENT: FrozenSet[str] = frozenset({"stack"})
INNER_FACTS: FrozenSet[str] = frozenset({"inner_exceptions", "inner_type_chains"})
_EXCEPTION_FIELDS = tuple(f.name for f in attr.fields(ManagedException))


class NeedsMore(BaseException):
    """A thin stop's unread part was touched: the predicate needs the full stop."""


class NotRead(PydbgautoError, AttributeError):
    """A thin stop's unread part read after the predicate's evaluation (an object it kept)."""


class Touches:
    """The names of the unread parts a predicate touched; ``closed`` once its evaluation is over."""

    def __init__(self) -> None:
        self.names: List[str] = []
        self.closed = False


def _touched(touches: Touches, name: str) -> BaseException:
    if touches.closed:
        return NotRead(
            f"{name} was not read: the predicate was given this stop as the debugger read it (type, "
            "message, HResult); keep what you need while it runs, or take the full stop from on_event "
            "or the capture record"
        )
    touches.names.append(name)
    return NeedsMore(name)


class _ThinException(ManagedException):
    __slots__ = ("_touches", "_read")

    def __getattribute__(self, name: str) -> Any:
        if name in _EXCEPTION_FIELDS and name not in object.__getattribute__(self, "_read"):
            raise _touched(object.__getattribute__(self, "_touches"), name)
        return super().__getattribute__(name)


class _ThinEvent(StopEvent):
    __slots__ = ("_touches",)

    def __getattribute__(self, name: str) -> Any:
        if name in NOT_READ_EVENT:
            raise _touched(object.__getattribute__(self, "_touches"), name)
        return super().__getattribute__(name)


class _ThinFacts(preds.Facts):
    __slots__ = ("_touches", "_no_inner")

    def __getattribute__(self, name: str) -> Any:
        if name in INNER_FACTS and not object.__getattribute__(self, "_no_inner"):
            raise _touched(object.__getattribute__(self, "_touches"), name)
        return super().__getattribute__(name)


def applies(event: StopEvent) -> bool:
    """True for a first-chance stop whose type, message and HResult the debugger read."""
    return event.exception is not None and event.exception.truncated in (FIELDS_READ, FIELDS_READ_NO_INNER)


def facts_of(event: StopEvent) -> Tuple[preds.Facts, Touches]:
    """The thin stop's facts, and what records the unread parts touched."""
    touches = Touches()
    exc = event.exception
    assert exc is not None
    no_inner = exc.truncated == FIELDS_READ_NO_INNER  # then inner_type/inner_address are the None they hold
    thin_exception = _ThinException(**{name: getattr(exc, name) for name in _EXCEPTION_FIELDS})
    object.__setattr__(thin_exception, "_touches", touches)
    object.__setattr__(thin_exception, "_read", READ_NO_INNER if no_inner else READ_EXCEPTION)
    thin_event = _ThinEvent(**{f.name: getattr(event, f.name) for f in attr.fields(StopEvent)})
    object.__setattr__(thin_event, "_touches", touches)
    object.__setattr__(thin_event, "exception", thin_exception)
    facts = _ThinFacts(event=thin_event)  # no inner exceptions: what it holds when there are none
    object.__setattr__(facts, "_touches", touches)
    object.__setattr__(facts, "_no_inner", no_inner)
    return facts, touches


NEEDS_MORE = preds.Verdict(False, "the predicate needs more than the debugger read")


def evaluate(predicate: preds.Predicate, facts: preds.FactsLike) -> preds.Verdict:
    """preds.evaluate, or NEEDS_MORE when the predicate touched what the thin stop has not."""
    try:
        return preds.evaluate(predicate, facts)
    except NeedsMore:
        return NEEDS_MORE


def needed_more(verdict: preds.Verdict, touches: Touches) -> bool:
    """After the evaluation: whether the predicate needs the full stop (the thin objects close)."""
    touches.closed = True
    return verdict is NEEDS_MORE or bool(touches.names)
