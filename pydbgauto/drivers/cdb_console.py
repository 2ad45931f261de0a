"""One running cdb and the framed exchange of commands with it; it knows nothing about targets.

Every command goes out as three lines: a ``.printf`` that prints a start marker, the command, a
``.printf`` that prints the end marker, with a fresh random token
(:mod:`pydbgauto.drivers.framing`). A reply is the text between the two markers of its token, so
late output of an older command is never taken for a newer reply. Past a command's time limit
the console breaks in, waits for that command's end marker so the stream is in step again, and
raises :class:`~pydbgauto.errors.DebuggerTimeoutError`; if even that fails, it is ``broken`` and
refuses further commands. It leaves with ``qd`` and, if cdb does not answer, ends cdb's process
tree (never the target).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Mapping, Optional, Sequence

from pydbgauto.drivers.base import command_line_preview
from pydbgauto.drivers.cdb_prompt import PROMPT_RE, clean_reply, ends_with_prompt, marker_command
from pydbgauto.drivers.cdb_transport import Transport
from pydbgauto.drivers.framing import ReplyBuffer, new_token
from pydbgauto.errors import (
    ConfigurationError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerTimeoutError,
    NoSuchProcessError,
    TargetExitedError,
)

__all__ = ["DEFAULT_RESYNC_TIMEOUT", "CdbConsole", "deadline_after"]

log = logging.getLogger(__name__)

DEFAULT_RESYNC_TIMEOUT = 15.0  # how long a break-in may take to bring the end marker
_DEFAULT_QUIT_TIMEOUT = 10.0


class CdbConsole:
    """A running cdb and the framed command exchange with it. Knows nothing about targets."""

    def __init__(
        self,
        transport: Transport,
        *,
        resync_timeout: float = DEFAULT_RESYNC_TIMEOUT,
    ) -> None:
        self.transport = transport
        self.banner = ""
        self._buffer = ReplyBuffer()
        self._resync_timeout = resync_timeout
        self._ended = False
        self._in_flight = False  # a command (or g) was sent and its end marker not seen yet
        self.broken: Optional[str] = None  # why the stream can no longer be trusted

    # -- start ------------------------------------------------------------------------------
    def start(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Optional[str], timeout: Optional[float]
    ) -> str:
        """Start cdb and return everything it printed up to its first prompt."""
        log.debug("starting %s", command_line_preview(argv))
        self.transport.start(argv, env, cwd)
        deadline = deadline_after(timeout)
        text = ""
        while not ends_with_prompt(text):
            chunk = self.transport.read(_remaining(deadline, cap=0.5))
            if chunk is None:
                self._ended = True
                raise _startup_failure(text, self.transport.stderr_text())
            text += chunk
            if _expired(deadline):
                self.kill()
                raise DebuggerTimeoutError(
                    f"cdb showed no prompt within {timeout} s of starting; last output: {_tail(text)!r}"
                )
        self.banner = text
        return text

    # -- commands ---------------------------------------------------------------------------
    def run(self, lines: Sequence[str], timeout: Optional[float], *, what: str) -> str:
        """Send ``lines`` framed by a fresh token and return the cleaned reply text.

        Past ``timeout``: break in, wait for the end marker (resync), raise DebuggerTimeoutError.
        """
        if self._ended:
            raise DebuggerDiedError("cdb has already ended")
        if self.broken:
            raise DebuggerError(f"cdb is out of step ({self.broken}); close the session")
        token = new_token()
        payload = [marker_command(token, end=False), *lines, marker_command(token, end=True)]
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ConfigurationError(f"internal: a command line with a line break: {line!r}")
        log.debug("cdb <- %r", lines)
        self._in_flight = True
        self.transport.write("\n".join(payload) + "\n")
        body = self._wait(token, deadline_after(timeout))
        if body is not None:
            self._in_flight = False
            return clean_reply(body)
        log.info("%s ran past %s s; breaking in", what, timeout)
        self.transport.interrupt()
        body = self._wait(token, deadline_after(self._resync_timeout))
        if body is None:
            self.broken = f"no reply to {what} even after breaking in"
            raise DebuggerTimeoutError(
                f"{what} ran past its time limit of {timeout} s and cdb did not answer a break-in within "
                f"{self._resync_timeout} s; the session cannot go on"
            )
        self._in_flight = False
        raise DebuggerTimeoutError(
            f"{what} ran past its time limit of {timeout} s; broke in, the target is stopped again"
        )

    def _wait(self, token: str, deadline: Optional[float]) -> Optional[str]:
        while True:
            reply = self._buffer.take(token)
            if reply is not None:
                if reply.noise.strip() and not PROMPT_RE.fullmatch(reply.noise.strip() + " "):
                    log.debug("cdb noise: %r", reply.noise[-2000:])
                return reply.body
            if _expired(deadline):
                return None
            chunk = self.transport.read(_remaining(deadline, cap=0.5))
            if chunk is None:
                self._ended = True
                raise DebuggerDiedError(
                    "cdb ended unexpectedly; last output: "
                    f"{_tail(self._buffer.pending)!r}; stderr: {_tail(self.transport.stderr_text())!r}"
                )
            if chunk:
                self._buffer.feed(chunk)

    # -- leave ------------------------------------------------------------------------------
    def send_raw(self, line: str) -> None:
        self.transport.write(line + "\n")

    def quit_detached(self, timeout: float = _DEFAULT_QUIT_TIMEOUT) -> Optional[int]:
        """``qd`` (detach and quit), break in first if cdb does not answer; end the tree if needed."""
        if self._ended:
            return self.transport.wait(0)
        # While the target runs (or a command does) cdb reads 'qd' only at its next prompt, so
        # break in first; a break-in that lands just before 'g' is read is lost, so try again.
        waits = [min(2.0, timeout), timeout] if self._in_flight else [timeout, timeout]
        for attempt, wait in enumerate(waits):
            if attempt > 0 or self._in_flight:
                self.transport.interrupt()
            try:
                self.send_raw("qd")
            except DebuggerDiedError:
                break
            status = self.transport.wait(wait)
            if status is not None:
                self._ended = True
                return status
            log.info("cdb did not end after qd (attempt %d)", attempt + 1)
        log.warning("cdb did not end after qd; ending its process tree")
        self.kill()
        return None

    def kill(self) -> None:
        self.transport.kill_tree()
        self._ended = True

    @property
    def ended(self) -> bool:
        return self._ended


def _startup_failure(text: str, stderr: str) -> Exception:
    both = text + "\n" + stderr
    m = re.search(r"Cannot debug pid (\d+), NTSTATUS 0x([0-9A-Fa-f]+)", both)
    if m:
        status = int(m.group(2), 16)
        if status == 0xC000010A:
            return TargetExitedError(f"process {m.group(1)} exited before cdb could attach")
        if status == 0xC00000BB:
            return ConfigurationError(
                f"cdb cannot debug process {m.group(1)}: bitness mismatch; "
                "use the x86 cdb for a 32-bit target"
            )
        return NoSuchProcessError(f"cdb cannot debug process {m.group(1)}: NTSTATUS 0x{status:08X}")
    if re.search(r"(?i)(process .* not found|no process|unable to find process|illegal process)", both):
        return NoSuchProcessError(f"no such process: {_tail(both)!r}")
    return DebuggerDiedError(f"cdb ended before its first prompt; output: {_tail(both)!r}")


def deadline_after(timeout: Optional[float]) -> Optional[float]:
    """The monotonic time ``timeout`` seconds from now; None: no limit."""
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: Optional[float], cap: float) -> float:
    if deadline is None:
        return cap
    return max(0.0, min(cap, deadline - time.monotonic()))


def _expired(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _tail(text: str, n: int = 600) -> str:
    return text[-n:]
