"""The contract every debugger driver meets (lldb, cdb, pykd, and the replay test doubles).

A driver starts one debugger, gets the target stopped under it, runs commands and
returns their text, arms the first-chance CLR exception stops in whatever way its
debugger needs, resumes until the next stop, writes a full dump, and leaves. It
never interprets SOS output: the Session hands the text to ``pydbgauto.sos``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import attr

from pydbgauto.errors import DebuggerError
from pydbgauto.models import StopKind  # the models layer owns it (StopEvent.kind); drivers import it here

if TYPE_CHECKING:
    from pydbgauto.models import DumpRecord, StopEvent


@attr.frozen
class Target:
    """Which process to debug: exactly one of ``argv`` (launch), ``pid`` or ``name`` (attach)."""

    argv: Optional[tuple[str, ...]] = None
    pid: Optional[int] = None
    name: Optional[str] = None
    env: Mapping[str, str] = attr.field(factory=dict)
    cwd: Optional[str] = None
    # a launched target ends with the session: killed at close, and by the debugger itself should
    # pydbgauto's Python die first (otherwise it is let go then, as at a detach)
    kill_on_close: bool = False

    @property
    def attaching(self) -> bool:
        return self.argv is None


@attr.frozen
class RawStop:
    """What the driver saw when the target stopped, before any SOS parsing."""

    kind: StopKind
    thread_id: Optional[int] = None  # OS thread id of the stopping thread
    exception_address: Optional[int] = None  # when the mechanism hands it over (lldb: first argument)
    exit_status: Optional[int] = None
    description: str = ""  # the debugger's own words: banner, stop reason
    text: str = ""  # raw debugger text around the stop
    type_chain: Tuple[str, ...] = ()  # the exception type and its bases, when the driver learnt them
    # The debugger-side filter evaluated the predicate at this stop and it matched; what it read of the
    # exception object on the way (None: not read)
    filter_matched: bool = False
    message: Optional[str] = None
    hresult: Optional[int] = None
    fields_read: bool = False  # message and hresult are what the object holds (read_fields_at_stops)
    no_inner: bool = False  # and it has no inner exception (its _innerException is null)


class _Default:
    """The type of :data:`DEFAULT`."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""A time limit left out: the driver's (or Session's) ``command_timeout``."""

# The one time-limit convention of every driver and the Session: seconds, ``None`` for no limit, or
# ``DEFAULT`` (left out) for the owner's ``command_timeout``.
TimeLimit = Union[float, None, _Default]


def resolve_timeout(timeout: TimeLimit, default: Optional[float]) -> Optional[float]:
    """Seconds (or None: no limit) for ``timeout``, ``default`` standing in for ``DEFAULT``."""
    return default if isinstance(timeout, _Default) else timeout


@attr.frozen
class FilteredStop:
    """A first-chance stop the debugger-side filter resumed without reporting it."""

    exception_address: int  # the exception object: the filter read it to decide
    thread_id: Optional[int] = None
    type: Optional[str] = None
    time: float = 0.0
    description: str = "resumed by the debugger-side filter"  # or ASKED_AND_LET_GO (ask_about_throws)


ASKED_AND_LET_GO = "let go by the predicate without a stop (the target asked)"


@attr.frozen
class AskedThrow:
    """A throw the target asks Python about without stopping (``Driver.ask_about_throws``): what the
    debugger's in-target code read of the exception object."""

    thread_id: int
    exception_address: int
    type_chain: Tuple[str, ...]  # the type and its bases
    message: Optional[str]
    hresult: int


# What the caller's decision says of an asked throw: True, it cannot match (the target goes on); False,
# stop it (it may match, or the decision needs the stop); None, stop it and ask no more.
AskedVerdict = Optional[bool]


class Driver(abc.ABC):
    """One debugger process driving one target.

    Every ability the Session uses is declared here. The abstract methods are what each debugger must do;
    the others have defaults that say "not supported", so the Session never feels out a driver with
    ``getattr`` or branches on its name.
    """

    name: str = "driver"  # "lldb", "cdb", "pykd", or a test double's name: for messages only
    sos_prefix: str = ""  # how SOS commands are spelt: "!pe" on cdb/pykd, "pe" under lldb
    threads_command: str = "threads"  # SOS's managed thread list ("clrthreads" under lldb)
    command_timeout: Optional[float] = 60.0  # what DEFAULT means for this driver
    # The target is a live process on this machine (lldb), so /proc tells whether it still lives; not a
    # replay double, not a remote or Windows debugger seen from elsewhere.
    local_process: bool = False

    # ----- what every driver does ---------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def pid(self) -> Optional[int]:
        """The target's pid once known."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start the debugger, launch or attach, load SOS; return with the target stopped."""

    @abc.abstractmethod
    def execute(self, command: str, timeout: TimeLimit = DEFAULT, *, thread_id: Optional[int] = None) -> str:
        """Run one debugger command while stopped and return its whole output; on ``thread_id`` (an OS
        thread id) when given, leaving the debugger's current thread as it was."""

    @abc.abstractmethod
    def arm_clr_exceptions(self) -> None:
        """Stop at every first-chance managed exception from now on (second chance always stops)."""

    @abc.abstractmethod
    def disarm_clr_exceptions(self) -> None:
        """Stop breaking on first-chance managed exceptions."""

    @abc.abstractmethod
    def resume(self, timeout: Optional[float]) -> RawStop:
        """Let the target run until its next stop; raise DebuggerTimeoutError past ``timeout``
        (having broken in, so the target is stopped again). ``None``: wait as long as it takes."""

    def resume_to_flush(self, timeout: Optional[float], flush_after: float) -> RawStop:
        """``resume``, but end the wait too at the first stop past ``flush_after`` seconds that the
        debugger-side filter would have resumed (DebuggerTimeoutError; the target is stopped there), so that
        the stops it resumed can be logged without ever stopping the target for that. This default, for a
        driver that cannot tell: a plain slice, broken into at ``flush_after``."""
        return self.resume(flush_after if timeout is None else min(timeout, flush_after))

    @abc.abstractmethod
    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        """Write a full dump of the stopped target to ``path`` (a new file)."""

    @abc.abstractmethod
    def versions(self) -> Mapping[str, str]:
        """Debugger, SOS and runtime versions, as far as known."""

    @abc.abstractmethod
    def detach(self) -> None:
        """Leave the target running, free of the debugger."""

    @abc.abstractmethod
    def close(self) -> None:
        """End the debugger. An attached target is detached and left running, never killed."""

    # ----- abilities some drivers have: the defaults say "not supported" ------------------------------

    supports_break_in: bool = False

    def break_in(self, timeout: Optional[float] = 30.0) -> RawStop:
        """Stop the running target now (called from another thread while ``resume`` waits)."""
        raise DebuggerError(f"the {self.name} driver cannot break in to a running target")

    supports_interrupt_wait: bool = False

    def interrupt_wait(self, timeout: Optional[float] = 30.0) -> bool:
        """Break into a ``resume`` running in another thread, if one runs (False: none did, nothing done);
        never a request of its own. Drivers without it: a watch with ``stop`` waits in slices."""
        return False

    def set_filter(self, spec: Optional[Dict[str, Any]]) -> bool:
        """Let the debugger decide a predicate (its ``to_spec()`` form) at each first-chance stop.

        True: the debugger evaluates it and resumes non-matching stops itself (listed by
        ``take_filtered``). False (the default): every stop comes back to Python. The one place where
        a driver interprets exception data; see docs/architecture.md."""
        return False

    def read_fields_at_stops(self) -> bool:
        """With no debugger-side filter: have the debugger send each first-chance stop with the type,
        message and HResult of its exception object (``RawStop.fields_read``), read without SOS where it
        can. True when it does (False, the default: the stop has no such fields)."""
        return False

    def take_filtered(self) -> List[FilteredStop]:
        """The stops the debugger-side filter resumed since the last call, oldest first."""
        return []

    def ask_about_throws(self, decide: Callable[[AskedThrow], AskedVerdict]) -> bool:
        """With ``read_fields_at_stops``: let the target ask ``decide`` (on a thread of this process) about
        a throw instead of stopping, where it can; the throws it let go are listed by ``take_filtered``.
        True when the debugger may ask (False, the default: every throw stops)."""
        return False

    def stop_stack(
        self,
        thread_id: Optional[int],
        max_frames: int,
        budget: float,
        exception_address: Optional[int] = None,
    ) -> Optional[Dict[str, Any]]:
        """The stopped thread's stack read in bounds (``{"deep": bool, "text": ...}`` or the deep
        form of ``pydbgauto.sos.deepstack``), with ``"pe"``: the pe text of ``exception_address`` when
        the driver read it too; None (the default): the Session runs plain clrstack (and pe)."""
        return None

    def verify_dump(self, record: "DumpRecord", expect: Optional["StopEvent"]) -> "DumpRecord":
        """Reopen a written dump with an independent reader and check it shows ``expect``.

        The default reader is dotnet-dump analyze (``pydbgauto.verify``); cdb reopens with ``cdb -z``."""
        from pydbgauto.verify import verify_dump

        return verify_dump(record, expect)

    def runtime_exception_count(self, at: str = "end") -> Optional[int]:
        """The runtime's own count of the exceptions thrown in the target since it started (what
        dotnet-counters shows as ``exception-count``), as the debugger read it where the target was stopped
        anyway: ``at="arm"``, when armed; ``"end"``, at its exit, the detach or the kill. Never a request of
        its own (a hung debugger cannot hold it up). None (the default): not known here."""
        return None

    def kill_target(self) -> bool:
        """End a target this driver launched. False (the default): this driver cannot."""
        return False

    # The file the launched target's standard error goes to (its crash report), when the driver keeps one.
    target_stderr: Optional[str] = None


def command_line_preview(argv: Sequence[str]) -> str:
    """A shell-like rendering of an argv, for messages and logs."""
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
