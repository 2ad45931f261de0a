"""Predicates: decide whether a stop is the one you care about. Pure; no I/O.

Build a predicate from the helpers and combine them with ``&``, ``|`` and ``~``::

    exception_type("System.InvalidOperationException") & message_matches("timeout")
    exception_type("System.IO.IOException", derived=True) | inner(hresult(0x80131509))
    first_chance() & thrown_in(r"^MyApp\\.Orders\\.") & ~message_matches("expected", re.IGNORECASE)

Any plain callable works as well (see :func:`as_predicate` for which argument it gets)::

    exception_type("System.Exception", derived=True) & (lambda exc: "db" in (exc.message or ""))

A predicate is evaluated on :class:`Facts`: the :class:`~pydbgauto.models.StopEvent` plus what the
watch loop fetched for it. :attr:`Predicate.needs` tells the loop what to fetch first:

``"stack"``
    ``event.stack`` (``clrstack`` of the stopping thread), for :func:`thrown_in`.
``"type_chain"``
    ``event.type_chain`` (the type and its base types), for ``exception_type(..., derived=True)``.
    Together with ``"inner"`` it also means ``Facts.inner_type_chains``.
``"inner"``
    ``Facts.inner_exceptions``: the inner exceptions, parsed, outermost first, for :func:`inner`
    (all of an ``AggregateException``'s inner exceptions).
``"fields"``
    ``exception.fields`` (the object's instance fields, ``dumpobj``), for :func:`field`; of the inner
    exceptions too when ``"inner"`` is needed. A plain callable gets them when decorated with
    :func:`uses_fields` (reading them costs SOS commands at every throw).

:meth:`Predicate.matches` lets an exception raised by a user callable propagate; :func:`evaluate`
catches it and reports it in a :class:`Verdict`, so a faulty predicate cannot end a watch.

Predicates built only from the helpers serialise to a JSON-ready spec (:meth:`Predicate.to_spec`,
:func:`from_spec`), so the same decision can be taken inside the debugger's agent process. Spec format,
one node per dict, ``"op"`` naming the node::

    {"op": "exception_type", "name": "System.IO.IOException", "derived": false}
    {"op": "message_matches", "regex": "timeout", "flags": "i"}      # flags: letters of "aimsx"
    {"op": "thrown_in", "regex": "^MyApp\\\\.", "flags": ""}
    {"op": "hresult", "code": 2148734217}                             # unsigned 32-bit int
    {"op": "first_chance"}    {"op": "second_chance"}
    {"op": "field", "name": "_paramName", "value": "order"}          # value: str, int, float, bool, None
    {"op": "inner", "predicate": {...}}
    {"op": "not", "predicate": {...}}
    {"op": "all", "predicates": [{...}, ...]}    {"op": "any", "predicates": [{...}, ...]}

Flag letters are those of Python's inline flags: ``a`` ASCII, ``i`` IGNORECASE, ``m`` MULTILINE,
``s`` DOTALL, ``x`` VERBOSE.
"""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Pattern, Tuple, Union

import attr

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import ManagedException, StopEvent
from pydbgauto.type_names import names_any, names_type

__all__ = [
    "NEEDS",
    "Facts",
    "Predicate",
    "Verdict",
    "as_predicate",
    "evaluate",
    "exception_type",
    "field",
    "first_chance",
    "from_spec",
    "hresult",
    "inner",
    "message_matches",
    "second_chance",
    "thrown_in",
    "uses_fields",
]

#: What a plain callable gets fetched before it is evaluated (``"fields"`` only with :func:`uses_fields`).
NEEDS: FrozenSet[str] = frozenset({"stack", "type_chain", "inner"})
#: Everything a predicate may ask the watch loop to fetch before evaluating it.
ALL_NEEDS: FrozenSet[str] = NEEDS | {"fields"}
_NONE: FrozenSet[str] = frozenset()

# Regex flags a spec can carry, as the letters of Python's inline flags.
_FLAG_LETTERS: Tuple[Tuple[str, int], ...] = (
    ("a", re.ASCII),
    ("i", re.IGNORECASE),
    ("m", re.MULTILINE),
    ("s", re.DOTALL),
    ("x", re.VERBOSE),
)
_FLAG_NAMES: Dict[int, str] = {
    re.ASCII: "ASCII",
    re.IGNORECASE: "IGNORECASE",
    re.MULTILINE: "MULTILINE",
    re.DOTALL: "DOTALL",
    re.VERBOSE: "VERBOSE",
}
_ALLOWED_FLAGS = re.ASCII | re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE


def _exceptions(value: Iterable[ManagedException]) -> Tuple[ManagedException, ...]:
    return tuple(value)


def _chains(value: Iterable[Iterable[str]]) -> Tuple[Tuple[str, ...], ...]:
    return tuple(tuple(chain) for chain in value)


@attr.frozen
class Facts:
    """What a predicate is evaluated on.

    ``event``: the stop. ``inner_exceptions``: the inner exceptions of ``event.exception``, parsed, in
    chain order (the direct inner exception first); the watch loop fills it when ``"inner"`` is in
    :attr:`Predicate.needs`. ``inner_type_chains``: optional, parallel to ``inner_exceptions``, the
    type chain of each (filled when both ``"inner"`` and ``"type_chain"`` are needed; missing entries
    mean "not known" and a ``derived=True`` type test then falls back to the exact type).
    """

    event: StopEvent
    inner_exceptions: Tuple[ManagedException, ...] = attr.field(default=(), converter=_exceptions)
    inner_type_chains: Tuple[Tuple[str, ...], ...] = attr.field(default=(), converter=_chains)

    @property
    def exception(self) -> Optional[ManagedException]:
        return self.event.exception

    def inner_facts(self) -> Iterable["Facts"]:
        """One ``Facts`` per inner exception, as if that exception were the one thrown.

        Its event keeps ``kind``, ``pid`` and ``thread_id``; ``exception`` is the inner exception,
        ``stack`` is ``None`` (the thread's stack belongs to the outer throw, so :func:`thrown_in`
        looks at the inner exception's own stack trace), ``type_chain`` comes from
        ``inner_type_chains``; its ``inner_exceptions`` are the ones further down the chain.
        """
        for i, exc in enumerate(self.inner_exceptions):
            chain = self.inner_type_chains[i] if i < len(self.inner_type_chains) else ()
            event = attr.evolve(
                self.event, exception=exc, exception_address=exc.address, stack=None, type_chain=tuple(chain)
            )
            yield Facts(event, self.inner_exceptions[i + 1 :], self.inner_type_chains[i + 1 :])


@attr.frozen
class Verdict:
    """The outcome of :func:`evaluate`: ``matched``, or ``error`` (then ``matched`` is False)."""

    matched: bool
    error: Optional[str] = None


FactsLike = Union[Facts, StopEvent]


def _facts(value: FactsLike) -> Facts:
    if isinstance(value, Facts):
        return value
    if isinstance(value, StopEvent):
        return Facts(value)
    raise TypeError(f"a predicate is evaluated on Facts or a StopEvent, not {type(value).__name__}")


class Predicate:
    """The base of every predicate; subclasses define ``_matches``, ``needs``, ``to_spec``, ``describe``."""

    __slots__ = ()

    # Used by describe() to decide where parentheses are needed: higher binds tighter.
    _precedence = 3

    def matches(self, facts: FactsLike) -> bool:
        """True if the predicate holds. Exceptions from user callables propagate (see :func:`evaluate`).

        Takes :class:`Facts`, or a bare :class:`StopEvent` (then there are no inner exceptions).
        """
        return self._matches(_facts(facts))

    def __call__(self, facts: FactsLike) -> bool:
        return self.matches(facts)

    def _matches(self, facts: Facts) -> bool:
        raise NotImplementedError

    @property
    def needs(self) -> FrozenSet[str]:
        """What the watch loop must fetch before evaluating: a subset of :data:`ALL_NEEDS`."""
        raise NotImplementedError

    def to_spec(self) -> Optional[Dict[str, Any]]:
        """A JSON-ready dict that :func:`from_spec` turns back into an equal predicate.

        None if any part is a plain callable (those cannot leave this process).
        """
        raise NotImplementedError

    def describe(self) -> str:
        """Readable, Python-like text: ``exception_type('X') & message_matches('timeout')``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.describe()

    def __and__(self, other: Any) -> "Predicate":
        return _All.of(self, as_predicate(other))

    def __rand__(self, other: Any) -> "Predicate":
        return _All.of(as_predicate(other), self)

    def __or__(self, other: Any) -> "Predicate":
        return _Any.of(self, as_predicate(other))

    def __ror__(self, other: Any) -> "Predicate":
        return _Any.of(as_predicate(other), self)

    def __invert__(self) -> "Predicate":
        return _Not(self)

    def __bool__(self) -> bool:
        # `p and q`, `p or q`, `not p` would silently pick one predicate: refuse, like numpy arrays do.
        raise TypeError(
            f"a predicate has no truth value ({self.describe()}); combine predicates with &, | and ~ "
            "(not and, or, not), and call .matches(facts) to evaluate one"
        )

    def _described_at(self, precedence: int) -> str:
        text = self.describe()
        return f"({text})" if self._precedence < precedence else text


# ---------------------------------------------------------------------------------------------
# Leaves


def _check_str(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, not {type(value).__name__} ({value!r})")
    return value


def _compile(what: str, regex: Any, flags: int) -> Pattern[str]:
    if isinstance(regex, re.Pattern):
        if flags:
            raise ConfigurationError(
                f"{what}: flags={flags!r} given with an already compiled pattern {regex.pattern!r}; "
                "put the flags into re.compile() or pass the pattern as a string"
            )
        if not isinstance(regex.pattern, str):
            raise ConfigurationError(f"{what}: the pattern {regex.pattern!r} is bytes; use a str pattern")
        pattern: Pattern[str] = regex
    else:
        _check_str(f"{what} regex", regex)
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise ConfigurationError(f"{what}: flags must be re flags (an int), not {flags!r}")
        try:
            pattern = re.compile(regex, flags)
        except re.error as exc:
            raise ConfigurationError(
                f"{what}: the regex {regex!r} does not compile: {exc}; fix the regular expression "
                "(use re.escape() to match text literally)"
            ) from None
    extra = pattern.flags & ~(_ALLOWED_FLAGS | re.UNICODE)
    if extra:
        raise ConfigurationError(
            f"{what}: regex flags {extra:#x} are not supported; use only re.ASCII, re.IGNORECASE, "
            "re.MULTILINE, re.DOTALL and re.VERBOSE"
        )
    return pattern


def _own_flags(pattern: Pattern[str]) -> int:
    """The flags that matter for a str pattern: re adds UNICODE to every one; inline flags are included."""
    return pattern.flags & _ALLOWED_FLAGS


def _flags_to_letters(flags: int) -> str:
    return "".join(letter for letter, bit in _FLAG_LETTERS if flags & bit)


def _letters_to_flags(what: str, letters: Any) -> int:
    _check_str(f"{what} flags", letters)
    table = dict(_FLAG_LETTERS)
    flags = 0
    for letter in letters:
        if letter not in table:
            raise ConfigurationError(
                f"{what}: unknown regex flag letter {letter!r} in {letters!r}; use letters of 'aimsx'"
            )
        flags |= table[letter]
    return flags


def _describe_regex(name: str, pattern: Pattern[str]) -> str:
    flags = _own_flags(pattern)
    if not flags:
        return f"{name}({pattern.pattern!r})"
    names = " | ".join(f"re.{_FLAG_NAMES[bit]}" for _letter, bit in _FLAG_LETTERS if flags & bit)
    return f"{name}({pattern.pattern!r}, {names})"


def _regex_spec(op: str, pattern: Pattern[str]) -> Dict[str, Any]:
    # Inline flags ("(?i)...") show up in pattern.flags too; repeating them in "flags" is harmless.
    return {"op": op, "regex": pattern.pattern, "flags": _flags_to_letters(_own_flags(pattern))}


class _Leaf(Predicate):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_spec() == other.to_spec()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.describe())


class _ExceptionType(_Leaf):
    __slots__ = ("name", "derived")

    def __init__(self, name: str, derived: bool) -> None:
        name = _check_str("exception_type name", name)
        if not name or name != name.strip():
            raise ConfigurationError(
                f"exception_type: {name!r} is not a type name; give the full name, "
                "e.g. 'System.InvalidOperationException'"
            )
        if not isinstance(derived, bool):
            raise ConfigurationError(f"exception_type: derived must be True or False, not {derived!r}")
        self.name = name
        self.derived = derived

    def _matches(self, facts: Facts) -> bool:
        exc = facts.event.exception
        if exc is not None and exc.type is not None and names_type(self.name, exc.type):
            return True
        return self.derived and names_any(self.name, facts.event.type_chain)

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({"type_chain"}) if self.derived else _NONE

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "exception_type", "name": self.name, "derived": self.derived}

    def describe(self) -> str:
        extra = ", derived=True" if self.derived else ""
        return f"exception_type({self.name!r}{extra})"


class _MessageMatches(_Leaf):
    __slots__ = ("pattern",)

    def __init__(self, pattern: Pattern[str]) -> None:
        self.pattern = pattern

    def _matches(self, facts: Facts) -> bool:
        exc = facts.event.exception
        if exc is None or exc.message is None:
            return False
        return self.pattern.search(exc.message) is not None

    @property
    def needs(self) -> FrozenSet[str]:
        return _NONE

    def to_spec(self) -> Dict[str, Any]:
        return _regex_spec("message_matches", self.pattern)

    def describe(self) -> str:
        return _describe_regex("message_matches", self.pattern)


def _throw_site_text(facts: Facts) -> Optional[str]:
    site = facts.event.throw_site
    if site is not None:
        return site.method or site.call_site
    exc = facts.event.exception
    if exc is not None and exc.frames:
        return exc.frames[0].method
    return None


class _ThrownIn(_Leaf):
    __slots__ = ("pattern",)

    def __init__(self, pattern: Pattern[str]) -> None:
        self.pattern = pattern

    def _matches(self, facts: Facts) -> bool:
        text = _throw_site_text(facts)
        return text is not None and self.pattern.search(text) is not None

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({"stack"})

    def to_spec(self) -> Dict[str, Any]:
        return _regex_spec("thrown_in", self.pattern)

    def describe(self) -> str:
        return _describe_regex("thrown_in", self.pattern)


class _HResult(_Leaf):
    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code

    def _matches(self, facts: Facts) -> bool:
        exc = facts.event.exception
        return exc is not None and exc.hresult == self.code

    @property
    def needs(self) -> FrozenSet[str]:
        return _NONE

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "hresult", "code": self.code}

    def describe(self) -> str:
        return f"hresult(0x{self.code:08X})"


_FIELD_VALUE_TYPES = (str, int, float, bool, type(None))


class _Field(_Leaf):
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any) -> None:
        name = _check_str("field name", name)
        if not name or name != name.strip() or any(c.isspace() for c in name):
            raise ConfigurationError(
                f"field: {name!r} is not a field name; give it as dumpobj shows it, e.g. '_paramName'"
            )
        if not isinstance(value, _FIELD_VALUE_TYPES):
            raise ConfigurationError(
                f"field: the value must be a str, int, float, bool or None, not {type(value).__name__}; "
                "for anything else use a callable decorated with uses_fields"
            )
        self.name = name
        self.value = value

    def _matches(self, facts: Facts) -> bool:
        exc = facts.event.exception
        if exc is None or exc.fields is None:
            return False
        for item in exc.fields:
            same_kind = isinstance(item.value, bool) == isinstance(self.value, bool)  # True is not 1 here
            if item.name == self.name and same_kind and item.value == self.value:
                return True
        return False

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({"fields"})

    def to_spec(self) -> Dict[str, Any]:
        return {"op": "field", "name": self.name, "value": self.value}

    def describe(self) -> str:
        return f"field({self.name!r}, {self.value!r})"


class _Chance(_Leaf):
    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "first-chance" or "second-chance"

    def _matches(self, facts: Facts) -> bool:
        return facts.event.kind == self.kind

    @property
    def needs(self) -> FrozenSet[str]:
        return _NONE

    def _name(self) -> str:
        return self.kind.replace("-", "_")

    def to_spec(self) -> Dict[str, Any]:
        return {"op": self._name()}

    def describe(self) -> str:
        return f"{self._name()}()"


# ---------------------------------------------------------------------------------------------
# Combinators


class _Composite(Predicate):
    __slots__ = ()

    def _children(self) -> Tuple[Predicate, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return self._children() == other._children()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._children()))


class _Inner(_Composite):
    __slots__ = ("predicate",)

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate

    def _children(self) -> Tuple[Predicate, ...]:
        return (self.predicate,)

    def _matches(self, facts: Facts) -> bool:
        return any(self.predicate._matches(sub) for sub in facts.inner_facts())

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({"inner"}) | self.predicate.needs

    def to_spec(self) -> Optional[Dict[str, Any]]:
        child = self.predicate.to_spec()
        return None if child is None else {"op": "inner", "predicate": child}

    def describe(self) -> str:
        return f"inner({self.predicate.describe()})"


class _Not(_Composite):
    __slots__ = ("predicate",)
    _precedence = 3

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate

    def _children(self) -> Tuple[Predicate, ...]:
        return (self.predicate,)

    def _matches(self, facts: Facts) -> bool:
        return not self.predicate._matches(facts)

    @property
    def needs(self) -> FrozenSet[str]:
        return self.predicate.needs

    def to_spec(self) -> Optional[Dict[str, Any]]:
        child = self.predicate.to_spec()
        return None if child is None else {"op": "not", "predicate": child}

    def describe(self) -> str:
        return "~" + self.predicate._described_at(3)


class _Nary(_Composite):
    __slots__ = ("predicates",)
    _op = ""
    _symbol = ""

    def __init__(self, predicates: Iterable[Predicate]) -> None:
        self.predicates: Tuple[Predicate, ...] = tuple(predicates)
        if not self.predicates:
            raise ConfigurationError(f"'{self._op}' needs at least one predicate")

    @classmethod
    def of(cls, *predicates: Predicate) -> Predicate:
        """Combine, flattening children of the same kind: (a & b) & c is all of a, b, c."""
        flat: List[Predicate] = []
        for p in predicates:
            flat.extend(p.predicates if type(p) is cls else (p,))  # type: ignore[attr-defined]
        return cls(flat)

    def _children(self) -> Tuple[Predicate, ...]:
        return self.predicates

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset().union(*(p.needs for p in self.predicates))

    def to_spec(self) -> Optional[Dict[str, Any]]:
        children = [p.to_spec() for p in self.predicates]
        if any(c is None for c in children):
            return None
        return {"op": self._op, "predicates": children}

    def describe(self) -> str:
        if len(self.predicates) == 1:  # only from a spec; reads as its one child
            return self.predicates[0]._described_at(self._precedence)
        return f" {self._symbol} ".join(p._described_at(self._precedence + 1) for p in self.predicates)


class _All(_Nary):
    __slots__ = ()
    _op = "all"
    _symbol = "&"
    _precedence = 2

    def _matches(self, facts: Facts) -> bool:
        return all(p._matches(facts) for p in self.predicates)


class _Any(_Nary):
    __slots__ = ()
    _op = "any"
    _symbol = "|"
    _precedence = 1

    def _matches(self, facts: Facts) -> bool:
        return any(p._matches(facts) for p in self.predicates)


# ---------------------------------------------------------------------------------------------
# Plain callables

_TAKES = ("exception", "event", "facts")
_ANNOTATION_NAMES = {"StopEvent": "event", "ManagedException": "exception", "Facts": "facts"}


class _Callable(Predicate):
    __slots__ = ("func", "takes")

    def __init__(self, func: Callable[[Any], Any], takes: str) -> None:
        self.func = func
        self.takes = takes

    def _matches(self, facts: Facts) -> bool:
        if self.takes == "facts":
            return bool(self.func(facts))
        if self.takes == "event":
            return bool(self.func(facts.event))
        exc = facts.event.exception
        return exc is not None and bool(self.func(exc))

    @property
    def needs(self) -> FrozenSet[str]:
        return NEEDS | frozenset(getattr(self.func, "__pydbgauto_needs__", ()))

    def to_spec(self) -> None:
        return None

    def describe(self) -> str:
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"<{name}({self.takes})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Callable) and self.func == other.func and self.takes == other.takes

    def __hash__(self) -> int:
        return hash((self.func, self.takes))


def _first_parameter(func: Callable[..., Any]) -> Optional[inspect.Parameter]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None  # builtins without a signature: take the default
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in params if p.default is inspect.Parameter.empty]
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values())
    if len(required) > 1:
        raise ConfigurationError(
            f"predicate {func!r} takes {len(required)} required arguments; a predicate takes one "
            "(a ManagedException, a StopEvent or Facts)"
        )
    if not params and not has_varargs:
        raise ConfigurationError(
            f"predicate {func!r} takes no argument; a predicate takes one "
            "(a ManagedException, a StopEvent or Facts)"
        )
    return params[0] if params else None


def _annotation_kind(func: Callable[..., Any], param: inspect.Parameter) -> Optional[str]:
    annotation: Any = param.annotation
    if annotation is inspect.Parameter.empty:
        return None
    for target in (func, getattr(func, "__call__", None)):  # a function, or an object with __call__
        try:  # resolve string annotations (from __future__ import annotations)
            hints = typing.get_type_hints(target)
        except Exception:  # noqa: BLE001 - unresolvable hints: fall back to the text below
            continue
        if param.name in hints:
            annotation = hints[param.name]
            break
    candidates: Tuple[Any, ...] = (annotation,)
    if typing.get_origin(annotation) is Union or type(annotation).__name__ == "UnionType":
        candidates = typing.get_args(annotation)  # Optional[X], X | None: NoneType is no class of ours
    for cand in candidates:
        if isinstance(cand, type):
            if issubclass(cand, StopEvent):
                return "event"
            if issubclass(cand, ManagedException):
                return "exception"
            if issubclass(cand, Facts):
                return "facts"
        elif isinstance(cand, str):  # an annotation typing could not resolve: look at the names in it
            found = set(re.findall(r"[A-Za-z_]\w*", cand)) & set(_ANNOTATION_NAMES)
            if len(found) == 1:
                return _ANNOTATION_NAMES[found.pop()]
    return None


def as_predicate(obj: Any, takes: Optional[str] = None) -> Predicate:
    """Turn ``obj`` into a :class:`Predicate`.

    A ``Predicate`` is returned as is. A callable of one argument is wrapped; which argument it gets:

    1. ``takes`` when given: ``"exception"``, ``"event"`` or ``"facts"``;
    2. else the annotation of its first parameter: ``StopEvent`` -> the event, ``Facts`` -> the facts,
       ``ManagedException`` -> the exception (``Optional[...]`` and string annotations are understood);
    3. else (no or another annotation, e.g. a lambda) the :class:`~pydbgauto.models.ManagedException`.

    A callable that takes the exception is not called for a stop without one (an exit, or one where
    SOS could not read the exception): the predicate is simply false. There is no "try one, then the
    other": a predicate is called with one kind of argument, chosen before the watch; once per stop,
    but for one thing: a watch on lldb first calls it on what the debugger read of the object (type,
    message, HResult), and calls it again on the full stop only if it touched anything else (the stack,
    the frames, fields, inner exceptions: pydbgauto.watching.thin); that first call may come on a thread
    that answers a question (pydbgauto.watching.asked): the throwing thread's while the target runs
    (.NET 8), or the debugger's at the stop (.NET 9+); calls never overlap.
    """
    if isinstance(obj, Predicate):
        if takes is not None:
            raise ConfigurationError(
                f"takes={takes!r} applies to plain callables, not to the predicate {obj!r}"
            )
        return obj
    if not callable(obj):
        raise ConfigurationError(
            f"{obj!r} ({type(obj).__name__}) is not a predicate; pass a pydbgauto predicate "
            "(exception_type(...), message_matches(...), ...) or a function of one argument"
        )
    if takes is not None:
        if takes not in _TAKES:
            raise ConfigurationError(f"takes={takes!r}: use one of {', '.join(map(repr, _TAKES))}")
        _first_parameter(obj)  # still refuse callables of the wrong arity
        return _Callable(obj, takes)
    param = _first_parameter(obj)
    kind = _annotation_kind(obj, param) if param is not None else None
    return _Callable(obj, kind or "exception")


def evaluate(predicate: Predicate, facts: FactsLike) -> Verdict:
    """Evaluate without letting an exception out: a failing predicate gives ``Verdict(False, error)``."""
    try:
        return Verdict(predicate.matches(facts))
    except Exception as exc:  # noqa: BLE001 - a user's predicate may raise anything
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:  # no source lookup: reading files is I/O
            code = tb.tb_frame.f_code
            where = f" at {code.co_filename}:{tb.tb_lineno} in {code.co_name}"
        return Verdict(False, f"{type(exc).__name__}: {exc}{where} (predicate {predicate.describe()})")


# ---------------------------------------------------------------------------------------------
# Helpers (the public constructors)


def exception_type(name: str, derived: bool = False) -> Predicate:
    """The exception's full type name is ``name``; with ``derived=True`` also when it derives from it.

    A generic type's own name (``"MyApp.Failure`1"``) matches each of its instantiations
    (``MyApp.Failure`1[[System.Int32, System.Private.CoreLib]]``); a nested type is ``"Outer+Inner"``
    (pydbgauto/type_names.py)."""
    return _ExceptionType(name, derived)


def message_matches(regex: Union[str, Pattern[str]], flags: int = 0) -> Predicate:
    """``re.search(regex, message)``; an exception without a message never matches."""
    return _MessageMatches(_compile("message_matches", regex, flags))


def thrown_in(regex: Union[str, Pattern[str]], flags: int = 0) -> Predicate:
    """``re.search`` on the throw site: ``StopEvent.throw_site``, else the exception's first frame."""
    return _ThrownIn(_compile("thrown_in", regex, flags))


def _hresult_value(code: Any) -> int:
    if isinstance(code, bool):
        raise ConfigurationError(f"hresult: {code!r} is not an HRESULT; give an int or a hex string")
    if isinstance(code, str):
        text = code.strip()
        digits = text[2:] if text.lower().startswith("0x") else text
        if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits):
            raise ConfigurationError(
                f"hresult: {code!r} is not a hex HRESULT; write it like '0x80131509' or '80131509'"
            )
        return int(digits, 16)
    if isinstance(code, int):
        if -(2**31) <= code < 0:
            return code & 0xFFFFFFFF  # the signed form .NET prints for Exception.HResult
        if 0 <= code <= 0xFFFFFFFF:
            return code
        raise ConfigurationError(f"hresult: {code} does not fit in 32 bits; an HRESULT is a 32-bit code")
    raise ConfigurationError(f"hresult: {code!r} is not an HRESULT; give an int or a hex string")


def hresult(code: Union[int, str]) -> Predicate:
    """The exception's HResult is ``code``: an int (signed or not) or a hex string like ``"0x80131509"``."""
    return _HResult(_hresult_value(code))


def inner(predicate: Any) -> Predicate:
    """``predicate`` holds for at least one exception of the inner-exception chain (not the outer one)."""
    return _Inner(as_predicate(predicate))


def field(name: str, value: Any) -> Predicate:
    """The exception's instance field ``name`` (as ``dumpobj`` names it, e.g. ``_paramName``) has ``value``:
    a string's text, a number, a bool, or None for a null reference. Same type and equal."""
    return _Field(name, value)


def uses_fields(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Mark a callable predicate as reading ``exception.fields`` (so the watch reads them first)::

    @pda.uses_fields
    def deadlock(exc):
        return exc.field("_number") == 1205
    """
    if not callable(func):
        raise ConfigurationError(f"uses_fields decorates a function, not {func!r}")
    try:
        func.__pydbgauto_needs__ = frozenset({"fields"})  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        raise ConfigurationError(f"uses_fields cannot mark {func!r}: wrap it in a function") from None
    return func


def first_chance() -> Predicate:
    """The stop is a first-chance exception (thrown; a handler may still catch it)."""
    return _Chance("first-chance")


def second_chance() -> Predicate:
    """The stop is a second-chance exception (unhandled: the process is about to crash)."""
    return _Chance("second-chance")


# ---------------------------------------------------------------------------------------------
# Specs

_SPEC_KEYS: Dict[str, FrozenSet[str]] = {
    "exception_type": frozenset({"op", "name", "derived"}),
    "message_matches": frozenset({"op", "regex", "flags"}),
    "thrown_in": frozenset({"op", "regex", "flags"}),
    "hresult": frozenset({"op", "code"}),
    "field": frozenset({"op", "name", "value"}),
    "first_chance": frozenset({"op"}),
    "second_chance": frozenset({"op"}),
    "inner": frozenset({"op", "predicate"}),
    "not": frozenset({"op", "predicate"}),
    "all": frozenset({"op", "predicates"}),
    "any": frozenset({"op", "predicates"}),
}
_OPTIONAL_KEYS = frozenset({"derived", "flags"})
_MAX_DEPTH = 100


def from_spec(spec: Mapping[str, Any]) -> Predicate:
    """The predicate a :meth:`Predicate.to_spec` dict describes; anything else is a ConfigurationError."""
    return _from_spec(spec, "spec", 0)


def _from_spec(spec: Any, where: str, depth: int) -> Predicate:
    if depth > _MAX_DEPTH:
        raise ConfigurationError(f"predicate spec: {where} is nested deeper than {_MAX_DEPTH} levels")
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"predicate spec: {where} must be a dict with an 'op', not {spec!r}")
    op = spec.get("op")
    if not isinstance(op, str) or op not in _SPEC_KEYS:
        raise ConfigurationError(
            f"predicate spec: {where} has op {op!r}; use one of {', '.join(sorted(_SPEC_KEYS))}"
        )
    keys = _SPEC_KEYS[op]
    unknown = set(spec) - keys
    missing = keys - _OPTIONAL_KEYS - set(spec)
    if unknown or missing:
        raise ConfigurationError(
            f"predicate spec: {where} ({op}) has unknown keys {sorted(unknown)} / lacks {sorted(missing)}; "
            f"its keys are {sorted(keys)}"
        )
    if op == "exception_type":
        return exception_type(spec["name"], spec.get("derived", False))
    if op in ("message_matches", "thrown_in"):
        flags = _letters_to_flags(f"predicate spec {where}", spec.get("flags", ""))
        regex = _check_str(f"predicate spec {where} regex", spec["regex"])
        return message_matches(regex, flags) if op == "message_matches" else thrown_in(regex, flags)
    if op == "hresult":
        code = spec["code"]
        if not isinstance(code, int) or isinstance(code, bool):
            raise ConfigurationError(f"predicate spec: {where} hresult code must be an int, not {code!r}")
        return hresult(code)
    if op == "field":
        return field(spec["name"], spec["value"])
    if op == "first_chance":
        return first_chance()
    if op == "second_chance":
        return second_chance()
    if op in ("inner", "not"):
        child = _from_spec(spec["predicate"], f"{where}.predicate", depth + 1)
        return _Inner(child) if op == "inner" else _Not(child)
    children = spec["predicates"]
    if not isinstance(children, (list, tuple)) or not children:
        raise ConfigurationError(f"predicate spec: {where}.predicates must be a non-empty list")
    parsed = [_from_spec(c, f"{where}.predicates[{i}]", depth + 1) for i, c in enumerate(children)]
    return _All(parsed) if op == "all" else _Any(parsed)
