"""The contract every debugger driver meets (lldb, cdb, pykd, and the replay test doubles).

A driver starts one debugger, gets the target stopped under it, runs commands and
returns their text, arms the first-chance CLR exception stops in whatever way its
debugger needs, resumes until the next stop, writes a full dump, and leaves. It
never interprets SOS output: the Session hands the text to ``pydbgauto.sos``.
"""

from __future__ import annotations

from typing import Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

import attr

from pydbgauto.models import StopKind  # the models layer owns it (StopEvent.kind); drivers import it here


@attr.frozen
class Target:
    """Which process to debug: exactly one of ``argv`` (launch), ``pid`` or ``name`` (attach)."""

    argv: Optional[tuple[str, ...]] = None
    pid: Optional[int] = None
    name: Optional[str] = None
    env: Mapping[str, str] = attr.field(factory=dict)
    cwd: Optional[str] = None

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


@runtime_checkable
class Driver(Protocol):
    """One debugger process driving one target."""

    name: str  # "lldb", "cdb", "pykd", or a test double's name

    @property
    def pid(self) -> Optional[int]:
        """The target's pid once known."""

    def start(self) -> None:
        """Start the debugger, launch or attach, load SOS; return with the target stopped."""

    def execute(self, command: str, timeout: Optional[float]) -> str:
        """Run one debugger command while stopped and return its whole output."""

    def arm_clr_exceptions(self) -> None:
        """Stop at every first-chance managed exception from now on (second chance always stops)."""

    def disarm_clr_exceptions(self) -> None:
        """Stop breaking on first-chance managed exceptions."""

    def resume(self, timeout: Optional[float]) -> RawStop:
        """Let the target run until its next stop; raise DebuggerTimeoutError past ``timeout``
        (having broken in, so the target is stopped again)."""

    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        """Write a full dump of the stopped target to ``path`` (a new file)."""

    def versions(self) -> Mapping[str, str]:
        """Debugger, SOS and runtime versions, as far as known."""

    def detach(self) -> None:
        """Leave the target running, free of the debugger."""

    def close(self) -> None:
        """End the debugger. An attached target is detached and left running, never killed."""


def command_line_preview(argv: Sequence[str]) -> str:
    """A shell-like rendering of an argv, for messages and logs."""
    import shlex

    return " ".join(shlex.quote(a) for a in argv)
