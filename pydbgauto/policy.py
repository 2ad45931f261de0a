"""Dump policy: which matched stops get a dump. Pure; no I/O.

:class:`DumpPolicy` is the user's configuration, checked when it is built. :class:`PolicyState` applies
it to the stream of stops of one watch: :meth:`PolicyState.decide` is called once for *every* stop
(matched or not), so the decision log accounts for every throw, and answers with a
:class:`~pydbgauto.models.DecisionRecord` (``Decision`` here is the same class). What the dump file is
called is :mod:`pydbgauto.dumpnames`'s job; :meth:`DumpPolicy.file_name` hands it the template.

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

import math
import os
from collections import Counter, OrderedDict
from typing import Any, Dict, FrozenSet, List, Optional, Tuple, Union

import attr

from pydbgauto import dumpnames
from pydbgauto.dumpnames import DEFAULT_TEMPLATE, PLACEHOLDERS, is_int, safe_name_part
from pydbgauto.errors import ConfigurationError
from pydbgauto.models import ACTIONS, REASONS, DecisionRecord, StopEvent, hex_text

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
STACK_SIGNATURE_FRAMES = 5
DUMP_KINDS = ("full",)
OBJECTS_REMEMBERED = 1024


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
        if self.max_dumps is not None and (not is_int(self.max_dumps) or self.max_dumps < 1):
            raise ConfigurationError(
                f"DumpPolicy.max_dumps={self.max_dumps!r}: give a whole number >= 1, or None for no limit"
            )
        if not is_int(self.skip_first) or self.skip_first < 0:
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
        if not is_int(self.min_free_disk) or self.min_free_disk < 0:
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
        dumpnames.check_template(self.name_template, self.max_dumps)

    # -----------------------------------------------------------------------------------------
    @property
    def needs(self) -> FrozenSet[str]:
        """What the watch loop must fetch for :meth:`PolicyState.decide` (like ``Predicate.needs``)."""
        return frozenset({"stack"}) if self.dedupe_stack else frozenset()

    def file_name(self, process: str, pid: int, exception: Optional[str], when: float, n: int) -> str:
        """The dump's file name (no folder): the template filled with safe values (see dumpnames)."""
        return dumpnames.file_name(self.name_template, process, pid, exception, when, n)

    def path(self, process: str, pid: int, exception: Optional[str], when: float, n: int) -> str:
        """``os.path.join(dump_dir, file_name(...))`` (string work only; nothing is created)."""
        return os.path.join(self.dump_dir, self.file_name(process, pid, exception, when, n))


# ---------------------------------------------------------------------------------------------
# Decisions


# One decision model for the policy, the watch and the records; the old name stays for callers.
Decision = DecisionRecord


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


def _event_label(event: StopEvent) -> str:
    what = event.exception_type or "unknown exception"
    return f"#{event.sequence} {what} at {hex_text(event.exception_address)}"


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

    def can_decide_without_stack(self) -> bool:
        """True when :meth:`decide` will not look at the stack: no stack dedupe, or no dump's stack
        remembered yet (a watch may then dump a debugger-side match before it reads the stack)."""
        return not self.policy.dedupe_stack or not self._stacks

    def remember_stack(self, event: StopEvent, dump_number: int) -> None:
        """The stack of a dump decided before its stop's stack was read (``event`` has it now)."""
        signature = stack_signature(event) if self.policy.dedupe_stack else None
        if signature is not None:
            self._stacks.setdefault(signature, dump_number)

    def decide(self, event: StopEvent, matched: bool, now: float, free_disk: Optional[int]) -> DecisionRecord:
        """Decide for one stop; call it for every stop. A ``dump`` decision is recorded at once."""
        if not isinstance(event, StopEvent):
            raise TypeError(f"decide: event must be a StopEvent, not {type(event).__name__}")
        if not isinstance(matched, bool):
            raise TypeError(f"decide: matched must be a bool (Verdict.matched), not {matched!r}")
        if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
            raise TypeError(f"decide: now must be a finite clock reading in seconds, not {now!r}")
        if free_disk is not None and (not is_int(free_disk) or free_disk < 0):
            raise TypeError(f"decide: free_disk must be bytes >= 0 or None, not {free_disk!r}")
        decision = self._decide(event, matched, float(now), free_disk)
        self.events += 1
        self.reasons[decision.reason] += 1
        return decision

    def _decide(
        self, event: StopEvent, matched: bool, now: float, free_disk: Optional[int]
    ) -> DecisionRecord:
        policy = self.policy
        if not matched:
            return DecisionRecord("skip", "no-match", "the predicate did not match")
        if event.kind == "exit":
            return DecisionRecord("skip", "no-match", "the process exited: there is nothing to dump")
        self.matches += 1
        label = _event_label(event)

        if policy.dedupe_object and event.exception_address is not None:
            key = (event.exception_address, event.exception_type)
            first = self._objects.get(key)
            if first is not None:
                self._objects.move_to_end(key)
                return DecisionRecord(
                    "skip",
                    "duplicate-object",
                    f"{label} is the same exception object as matched event #{first} (a rethrow)",
                )
            self._objects[key] = event.sequence
            if len(self._objects) > OBJECTS_REMEMBERED:
                self._objects.popitem(last=False)

        signature = stack_signature(event) if policy.dedupe_stack else None
        if signature is not None and signature in self._stacks:
            return DecisionRecord(
                "skip",
                "duplicate-stack",
                f"{label} has the type and top frames of dump #{self._stacks[signature]} "
                f"({' <- '.join(signature[1:3])})",
            )

        self.counted += 1
        if self.counted <= policy.skip_first:
            return DecisionRecord(
                "skip",
                "skip-first",
                f"{label}: match {self.counted} of the first {policy.skip_first} let pass",
            )
        if policy.max_dumps is not None and self.dumps >= policy.max_dumps:
            return DecisionRecord(
                "skip", "limit", f"{label}: max_dumps={policy.max_dumps} dumps written already"
            )
        if policy.cooldown > 0 and self.last_dump_at is not None:
            since = now - self.last_dump_at
            if since < policy.cooldown:
                return DecisionRecord(
                    "skip",
                    "cooldown",
                    f"{label}: {max(since, 0.0):.1f} s since dump #{self.dumps}, "
                    f"cooldown is {policy.cooldown:g} s",
                )
        if free_disk is not None and free_disk < policy.min_free_disk:
            return DecisionRecord(
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
        return DecisionRecord("dump", "matched", f"{label}: dump {self.dumps}{limit}", self.dumps)


def _size(value: Union[int, float]) -> str:
    if value >= GIB:
        return f"{value / GIB:.1f} GiB"
    return f"{value / (1 << 20):.1f} MiB"
