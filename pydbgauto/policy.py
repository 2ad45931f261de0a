"""Dump policy: which matched stops get a dump, and what the dump file is called. Pure; no I/O.

:class:`DumpPolicy` is the user's configuration, checked when it is built. :class:`PolicyState` applies
it to the stream of stops of one watch: :meth:`PolicyState.decide` is called once for *every* stop
(matched or not), so the decision log accounts for every throw, and answers with a :class:`Decision`.

Checks, in this order (the first that applies gives the reason):

``no-match``          the predicate did not match (or the stop is the process's exit: nothing to dump)
``duplicate-object``  the same exception object, keyed on (address, type), as an earlier *match*: a
                      rethrow (or the second chance of a first-chance match). Addresses are reused after
                      a GC, so the type is part of the key and only the last 1024 objects are remembered.
``duplicate-stack``   the same stack signature as an earlier *dump* (see :func:`stack_signature`)
``skip-first``        one of the first ``skip_first`` counted matches
``limit``             ``max_dumps`` dumps were decided already
``cooldown``          less than ``cooldown`` seconds since the last dump decision
``disk``              less than ``min_free_disk`` bytes free (an unknown figure, ``None``, does not block)
``matched``           dump (``action="dump"``, ``n`` is the 1-based capture number)

Why duplicates are keyed differently: an exception object, once matched, has been seen: a rethrow is not
a new occurrence, so it neither counts toward ``skip_first`` nor gets a dump of its own. A stack signature
names a code path that may throw many distinct exceptions; only a dump "uses it up", so with
``skip_first=2`` a loop that throws at one site gets its dump on the third throw (were skipped matches to
record their signature, that loop would never be dumped). Duplicates are checked first, so they never
count toward ``skip_first``.

A ``dump`` decision is recorded by ``decide`` itself (the capture number, the cooldown clock, the stack
signature): the caller does not report back. A dump that then fails to be written still used its slot,
so a broken disk cannot make the watch retry forever; the watch records the failure instead.

Clocks are passed in: ``now`` for :meth:`PolicyState.decide` is any clock in seconds (``time.monotonic()``
is right: the cooldown must not jump with the wall clock); ``when`` for :meth:`DumpPolicy.file_name` is
seconds since the epoch (``time.time()``), printed in UTC.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import string
from collections import Counter, OrderedDict
from typing import Any, Dict, FrozenSet, List, Optional, Tuple, Union

import attr

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import StopEvent

__all__ = [
    "ACTIONS",
    "GIB",
    "PLACEHOLDERS",
    "REASONS",
    "STACK_SIGNATURE_FRAMES",
    "Decision",
    "DumpPolicy",
    "PolicyState",
    "safe_name_part",
    "stack_signature",
]

GIB = 1 << 30
PLACEHOLDERS: Tuple[str, ...] = ("process", "pid", "exception", "time", "n")
DEFAULT_TEMPLATE = "{process}_{pid}_{n}_{exception}_{time}.core"
STACK_SIGNATURE_FRAMES = 5
ACTIONS = ("dump", "skip")
REASONS = (
    "no-match",
    "matched",
    "skip-first",
    "limit",
    "cooldown",
    "duplicate-stack",
    "duplicate-object",
    "disk",
)
DUMP_KINDS = ("full",)
OBJECTS_REMEMBERED = 1024

# One value put into a file name: at most this many characters, of these.
_PART_MAX = 80
_NAME_MAX = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_INT_SPEC = re.compile(r"0?[1-9]?[0-9]?[dxX]?")
# Device names Windows refuses as a file's stem, whatever the extension.
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)
# Worst-case values to check a template's longest name: pid_max on Linux is 2**22.
_SAMPLE_LONG: Dict[str, Any] = {
    "process": "p" * _PART_MAX,
    "pid": 4194304,
    "exception": "e" * _PART_MAX,
    "time": "20240229-235959",
    "n": 999999,
}


def safe_name_part(text: Optional[str], default: str = "unknown") -> str:
    """``text`` made safe as part of a file name: only ``[A-Za-z0-9._-]``, no ``..``, no leading or
    trailing dot, not a Windows device name, at most 80 characters; ``default`` when no letter or digit
    is left."""
    value = _UNSAFE.sub("_", text or "")
    value = re.sub(r"\.{2,}", "_", value)[:_PART_MAX].strip(".")
    if not re.search("[A-Za-z0-9]", value):  # nothing recognisable left ("", "_", "___" of "Ошибка")
        return default
    if value.split(".")[0].upper() in _RESERVED:
        value = "_" + value[: _PART_MAX - 1]
    return value


def _name_problem(name: str) -> Optional[str]:
    """Why ``name`` is not a safe file name inside the dump folder, or None."""
    if not name:
        return "it is empty"
    bad = sorted(set(_UNSAFE.findall(name)))
    if bad:
        return f"it contains {''.join(bad)!r}; only letters, digits, '.', '_' and '-' are allowed"
    if ".." in name:
        return "it contains '..'"
    if name.startswith("."):
        return "it starts with '.' (a hidden file)"
    if name.endswith("."):
        return "it ends with '.' (Windows and cdb drop or refuse it)"
    if name.split(".")[0].upper() in _RESERVED:
        return f"its stem {name.split('.')[0]!r} is a Windows device name"
    if len(name) > _NAME_MAX:
        return f"it is {len(name)} characters long; file names are limited to {_NAME_MAX}"
    return None


def _utc_stamp(when: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"time {when!r} is not a usable epoch time ({exc}); pass time.time()"
        ) from None
    return moment.strftime("%Y%m%d-%H%M%S")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


@attr.frozen
class DumpPolicy:
    """Where dumps go, what they are called, and how many to write. Checked when built.

    ``dump_dir``: the folder (checking that it exists and is writable is the watch loop's job).
    ``name_template``: the file name inside it; placeholders ``{process}``, ``{pid}``, ``{exception}``
    (the type name), ``{time}`` (UTC ``YYYYmmdd-HHMMSS``), ``{n}`` (1-based capture number); ``{pid}`` and
    ``{n}`` take an int format such as ``{n:03d}``. Process and exception names are made safe with
    :func:`safe_name_part`. ``max_dumps``: None for no limit. ``skip_first``: matches let pass before the
    first dump. ``cooldown``: seconds between dumps. ``dedupe_stack`` / ``dedupe_object``: see the module
    docstring. ``min_free_disk``: bytes that must be free before a dump. ``kind``: ``"full"``.
    ``verify``: reopen each dump with an independent reader.
    """

    dump_dir: str = attr.field(converter=_fspath)
    name_template: str = DEFAULT_TEMPLATE
    max_dumps: Optional[int] = 1
    skip_first: int = 0
    cooldown: float = 0.0
    dedupe_stack: bool = True
    dedupe_object: bool = True
    min_free_disk: int = GIB
    kind: str = "full"
    verify: bool = True

    def __attrs_post_init__(self) -> None:
        self.validate()

    # -----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigurationError saying what is wrong and what to do; run when the policy is built."""
        self._validate_dir()
        self._validate_numbers()
        for name in ("dedupe_stack", "dedupe_object", "verify"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(
                    f"DumpPolicy.{name} must be True or False, not {getattr(self, name)!r}"
                )
        self._validate_kind()
        self._validate_template()

    def _validate_dir(self) -> None:
        if not isinstance(self.dump_dir, str) or not self.dump_dir:
            raise ConfigurationError(
                f"DumpPolicy.dump_dir must name a folder (a non-empty str), not {self.dump_dir!r}"
            )
        if any(ord(ch) < 32 or ch == "\x7f" for ch in self.dump_dir):
            raise ConfigurationError(
                f"DumpPolicy.dump_dir {self.dump_dir!r} contains a NUL, line break or other control "
                "character; choose a folder whose path has none"
            )

    def _validate_numbers(self) -> None:
        if self.max_dumps is not None and (not _is_int(self.max_dumps) or self.max_dumps < 1):
            raise ConfigurationError(
                f"DumpPolicy.max_dumps={self.max_dumps!r}: give a whole number >= 1, or None for no limit"
            )
        if not _is_int(self.skip_first) or self.skip_first < 0:
            raise ConfigurationError(
                f"DumpPolicy.skip_first={self.skip_first!r}: give a whole number >= 0 "
                "(0 dumps the first match)"
            )
        cooldown = self.cooldown
        if (
            not isinstance(cooldown, (int, float))
            or isinstance(cooldown, bool)
            or not math.isfinite(cooldown)
        ):
            raise ConfigurationError(f"DumpPolicy.cooldown={cooldown!r}: give a finite number of seconds")
        if cooldown < 0:
            raise ConfigurationError(f"DumpPolicy.cooldown={cooldown!r}: give seconds >= 0 (0 for none)")
        if not _is_int(self.min_free_disk) or self.min_free_disk < 0:
            raise ConfigurationError(
                f"DumpPolicy.min_free_disk={self.min_free_disk!r}: give a number of bytes >= 0 "
                "(0 turns the check off; the default is 1 GiB = pydbgauto.policy.GIB)"
            )

    def _validate_kind(self) -> None:
        if self.kind in DUMP_KINDS:
            return
        raise ConfigurationError(
            f"DumpPolicy.kind={self.kind!r} is not supported: pydbgauto writes full dumps only, with every "
            "debugger (cdb: '.dump /ma'; lldb on Linux: pydbgauto's own ELF core writer, the kind "
            "'dotnet-dump analyze' opens; lldb itself saves only minidumps there, which dotnet-dump cannot "
            "read). cdb could also write smaller minidumps ('.dump /m', '/mh'), and 'dotnet-dump collect' "
            "writes mini/heap/triage dumps of a process no debugger holds, but neither is wired in. "
            "Use kind='full'."
        )

    def _validate_template(self) -> None:
        template = self.name_template
        what = f"DumpPolicy.name_template {template!r}"
        if not isinstance(template, str) or not template:
            raise ConfigurationError(
                f"{what}: give a non-empty file name template, e.g. {DEFAULT_TEMPLATE!r}"
            )
        if "/" in template or "\\" in template or os.path.isabs(template):
            raise ConfigurationError(
                f"{what} contains a path separator: the template names a file inside dump_dir; "
                "put any folder into dump_dir instead"
            )
        if ".." in template:
            raise ConfigurationError(f"{what} contains '..'; a dump name must stay inside dump_dir")
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ConfigurationError(
                f"{what} is not a valid template ({exc}); write '{{{{' and '}}}}' for literal braces, "
                "or better, leave braces out of file names"
            ) from None
        fields = set()
        for literal, field, spec, conversion in parsed:
            unsafe = _UNSAFE.findall(literal)
            if unsafe:
                raise ConfigurationError(
                    f"{what}: the characters {''.join(sorted(set(unsafe)))!r} are not allowed in a dump "
                    "name; use letters, digits, '.', '_' and '-' besides the placeholders"
                )
            if field is None:
                continue
            if field not in PLACEHOLDERS:
                raise ConfigurationError(
                    f"{what}: unknown placeholder {{{field}}}; use "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                )
            if conversion is not None:
                raise ConfigurationError(f"{what}: {{{field}!{conversion}}}: conversions are not allowed")
            if spec and (field not in ("pid", "n") or not _INT_SPEC.fullmatch(spec)):
                raise ConfigurationError(
                    f"{what}: the format '{{{field}:{spec}}}' is not allowed; only {{pid}} and {{n}} take "
                    "a simple int format such as {n:03d}"
                )
            fields.add(field)
        if "n" not in fields and self.max_dumps != 1:
            raise ConfigurationError(
                f"{what} has no {{n}}: with max_dumps={self.max_dumps!r} several dumps would get the same "
                "name; add {n} (the capture number)"
            )
        for sample in (_SAMPLE_LONG, {"process": "p", "pid": 0, "exception": "e", "time": "t", "n": 1}):
            name = template.format(**sample)
            problem = _name_problem(name)
            if problem:
                raise ConfigurationError(
                    f"{what} gives names such as {name[:60]!r}...: {problem}; shorten it"
                )

    # -----------------------------------------------------------------------------------------
    @property
    def needs(self) -> FrozenSet[str]:
        """What the watch loop must fetch for :meth:`PolicyState.decide` (like ``Predicate.needs``)."""
        return frozenset({"stack"}) if self.dedupe_stack else frozenset()

    def file_name(self, process: str, pid: int, exception: Optional[str], when: float, n: int) -> str:
        """The dump's file name (no folder): the template filled with safe values."""
        if not _is_int(pid) or pid < 0:
            raise ConfigurationError(f"file_name: pid must be an int >= 0, not {pid!r}")
        if not _is_int(n) or n < 1:
            raise ConfigurationError(f"file_name: n (the capture number) must be an int >= 1, not {n!r}")
        if not isinstance(when, (int, float)) or isinstance(when, bool) or not math.isfinite(when):
            raise ConfigurationError(f"file_name: when must be seconds since the epoch, not {when!r}")
        name = self.name_template.format(
            process=safe_name_part(process, "process"),
            pid=pid,
            exception=safe_name_part(exception, "unknown"),
            time=_utc_stamp(when),
            n=n,
        )
        problem = _name_problem(name)
        if problem:  # validation should make this unreachable; never hand out an unsafe name
            raise ConfigurationError(f"dump name {name!r} is not safe: {problem}")
        return name

    def path(self, process: str, pid: int, exception: Optional[str], when: float, n: int) -> str:
        """``os.path.join(dump_dir, file_name(...))`` (string work only; nothing is created)."""
        return os.path.join(self.dump_dir, self.file_name(process, pid, exception, when, n))


# ---------------------------------------------------------------------------------------------
# Decisions


def _in(allowed: Tuple[str, ...]) -> Any:
    return attr.validators.in_(allowed)


@attr.frozen
class Decision:
    """What to do with one stop: ``action`` ``dump`` or ``skip``, the ``reason`` (see the module docstring),
    a readable ``detail``, and for a dump ``n``, its 1-based capture number."""

    action: str = attr.field(validator=_in(ACTIONS))
    reason: str = attr.field(validator=_in(REASONS))
    detail: str = ""
    n: Optional[int] = None

    @property
    def dump(self) -> bool:
        return self.action == "dump"

    def to_dict(self) -> Dict[str, Any]:
        return attr.asdict(self)

    def __str__(self) -> str:
        head = f"dump #{self.n}" if self.dump else f"skip ({self.reason})"
        return f"{head}: {self.detail}" if self.detail else head


StackSignature = Tuple[str, ...]


def stack_signature(event: StopEvent, frames: int = STACK_SIGNATURE_FRAMES) -> Optional[StackSignature]:
    """The exception type and the methods of the top ``frames`` managed frames, from the throw site down.

    From ``event.stack`` (the runtime's dispatch frames above the throw site left out); without one, from
    the exception's own stack trace. Methods only, no IPs or offsets: tiered compilation moves code, so
    the same path keeps one signature. None when there is no frame to go by, or the stop is an exit.
    """
    if event.kind == "exit":
        return None
    site = event.throw_site
    methods: List[str] = []
    if site is not None and event.stack is not None:
        start = next((i for i, frame in enumerate(event.stack.frames) if frame is site), 0)
        for frame in event.stack.frames[start:]:
            if frame.kind == "managed":
                methods.append(frame.method or frame.call_site)
    elif event.exception is not None:
        methods = [frame.method for frame in event.exception.frames]
    if not methods:
        return None
    return (event.exception_type or "?",) + tuple(methods[:frames])


def _hex(value: Optional[int]) -> str:
    return "?" if value is None else f"0x{value:x}"


def _event_label(event: StopEvent) -> str:
    return (
        f"#{event.sequence} {event.exception_type or 'unknown exception'} at {_hex(event.exception_address)}"
    )


class PolicyState:
    """The decisions of one watch under one :class:`DumpPolicy`. Not thread-safe; one per watch.

    Counters: ``events`` (decisions made), ``matches`` (matched stops, duplicates included), ``counted``
    (matches that were not duplicates: what ``skip_first`` counts), ``dumps`` (dump decisions);
    ``reasons`` counts decisions per reason.
    """

    def __init__(self, policy: DumpPolicy) -> None:
        if not isinstance(policy, DumpPolicy):
            raise ConfigurationError(f"PolicyState needs a DumpPolicy, not {type(policy).__name__}")
        self.policy = policy
        self.events = 0
        self.matches = 0
        self.counted = 0
        self.dumps = 0
        self.last_dump_at: Optional[float] = None
        self.reasons: Counter[str] = Counter()
        # (address, type) -> the sequence of the event that first matched with it; most recent last
        self._objects: "OrderedDict[Tuple[int, Optional[str]], int]" = OrderedDict()
        self._stacks: Dict[StackSignature, int] = {}  # signature -> capture number of its dump

    @property
    def done(self) -> bool:
        """True once ``max_dumps`` dumps were decided: the watch can stop."""
        return self.policy.max_dumps is not None and self.dumps >= self.policy.max_dumps

    def summary(self) -> Dict[str, Any]:
        """The counters, JSON-ready, for a capture record."""
        return {
            "events": self.events,
            "matches": self.matches,
            "counted": self.counted,
            "dumps": self.dumps,
            "reasons": dict(sorted(self.reasons.items())),
        }

    def decide(self, event: StopEvent, matched: bool, now: float, free_disk: Optional[int]) -> Decision:
        """Decide for one stop; call it for every stop. A ``dump`` decision is recorded at once."""
        if not isinstance(event, StopEvent):
            raise TypeError(f"decide: event must be a StopEvent, not {type(event).__name__}")
        if not isinstance(matched, bool):
            raise TypeError(f"decide: matched must be a bool (Verdict.matched), not {matched!r}")
        if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
            raise TypeError(f"decide: now must be a finite clock reading in seconds, not {now!r}")
        if free_disk is not None and (not _is_int(free_disk) or free_disk < 0):
            raise TypeError(f"decide: free_disk must be bytes >= 0 or None, not {free_disk!r}")
        decision = self._decide(event, matched, float(now), free_disk)
        self.events += 1
        self.reasons[decision.reason] += 1
        return decision

    def _decide(self, event: StopEvent, matched: bool, now: float, free_disk: Optional[int]) -> Decision:
        policy = self.policy
        if not matched:
            return Decision("skip", "no-match", "the predicate did not match")
        if event.kind == "exit":
            return Decision("skip", "no-match", "the process exited: there is nothing to dump")
        self.matches += 1
        label = _event_label(event)

        if policy.dedupe_object and event.exception_address is not None:
            key = (event.exception_address, event.exception_type)
            first = self._objects.get(key)
            if first is not None:
                self._objects.move_to_end(key)
                return Decision(
                    "skip",
                    "duplicate-object",
                    f"{label} is the same exception object as matched event #{first} (a rethrow)",
                )
            self._objects[key] = event.sequence
            if len(self._objects) > OBJECTS_REMEMBERED:
                self._objects.popitem(last=False)

        signature = stack_signature(event) if policy.dedupe_stack else None
        if signature is not None and signature in self._stacks:
            return Decision(
                "skip",
                "duplicate-stack",
                f"{label} has the type and top frames of dump #{self._stacks[signature]} "
                f"({' <- '.join(signature[1:3])})",
            )

        self.counted += 1
        if self.counted <= policy.skip_first:
            return Decision(
                "skip",
                "skip-first",
                f"{label}: match {self.counted} of the first {policy.skip_first} let pass",
            )
        if policy.max_dumps is not None and self.dumps >= policy.max_dumps:
            return Decision("skip", "limit", f"{label}: max_dumps={policy.max_dumps} dumps written already")
        if policy.cooldown > 0 and self.last_dump_at is not None:
            since = now - self.last_dump_at
            if since < policy.cooldown:
                return Decision(
                    "skip",
                    "cooldown",
                    f"{label}: {max(since, 0.0):.1f} s since dump #{self.dumps}, "
                    f"cooldown is {policy.cooldown:g} s",
                )
        if free_disk is not None and free_disk < policy.min_free_disk:
            return Decision(
                "skip",
                "disk",
                f"{label}: {_size(free_disk)} free in the dump folder, "
                f"min_free_disk is {_size(policy.min_free_disk)}",
            )

        self.dumps += 1
        self.last_dump_at = now
        if signature is not None:
            self._stacks[signature] = self.dumps
        limit = "" if policy.max_dumps is None else f" of {policy.max_dumps}"
        return Decision("dump", "matched", f"{label}: dump {self.dumps}{limit}", self.dumps)


def _size(value: Union[int, float]) -> str:
    if value >= GIB:
        return f"{value / GIB:.1f} GiB"
    return f"{value / (1 << 20):.1f} MiB"
