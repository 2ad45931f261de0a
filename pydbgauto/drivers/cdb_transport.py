"""How bytes move between the cdb driver and a cdb process: plain pipes (the default) or wexpect.

A transport starts the process, writes text to it, reads what it printed (raw, with no line
framing: cdb's prompt has no newline), breaks in, waits for it to end and ends its process tree.
It knows nothing about commands or replies; :mod:`pydbgauto.drivers.cdb_console` frames those.

cdb gets a process group of its own so that a break-in (CTRL_BREAK_EVENT on Windows) reaches it
and not us. On POSIX the same code runs the replay test double (``tests/doubles/``): there "break
in" is SIGINT to the double's process. That path exists for the double only.
"""

from __future__ import annotations

import codecs
import locale
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Mapping, Optional, Protocol, Sequence

from pydbgauto.drivers.base import command_line_preview
from pydbgauto.errors import ConfigurationError, DebuggerDiedError, DebuggerError, DebuggerNotFoundError
from pydbgauto.drivers.cdb_safety import IS_WINDOWS

__all__ = ["PipeTransport", "Transport", "WexpectTransport", "make_transport"]

log = logging.getLogger(__name__)


class Transport(Protocol):
    """How bytes move between the driver and cdb."""

    @property
    def pid(self) -> Optional[int]:
        ...

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Optional[str]) -> None:
        ...

    def write(self, text: str) -> None:
        ...

    def read(self, timeout: Optional[float]) -> Optional[str]:
        """Decoded text ("" when nothing came within ``timeout``), or None at end of stream."""

    def interrupt(self) -> None:
        ...

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        """The exit status once the process ended within ``timeout``, else None."""

    def kill_tree(self) -> None:
        ...

    def stderr_text(self) -> str:
        ...


def _default_encoding() -> str:
    return locale.getpreferredencoding(False) if IS_WINDOWS else "utf-8"


class PipeTransport:
    """cdb over plain pipes, reading raw bytes on a thread (the prompt has no newline).

    cdb gets a new process group (Windows: CREATE_NEW_PROCESS_GROUP; POSIX: its own
    session) so a break-in reaches it and not us. On POSIX, :meth:`interrupt` sends SIGINT
    to the process: that is only for the replay test double.
    """

    def __init__(self, encoding: Optional[str] = None) -> None:
        self._encoding = encoding or _default_encoding()
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: list[str] = []
        self._eof = False

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Optional[str]) -> None:
        kwargs: dict[str, Any] = {}
        if IS_WINDOWS:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True
        try:
            self._proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                bufsize=0,
                **kwargs,
            )
        except FileNotFoundError as e:
            raise DebuggerNotFoundError(f"cannot start {argv[0]!r}: {e}") from e
        except OSError as e:
            raise DebuggerError(f"cannot start {command_line_preview(argv)}: {e}") from e
        threading.Thread(target=self._pump_stdout, name="cdb-stdout", daemon=True).start()
        threading.Thread(target=self._pump_stderr, name="cdb-stderr", daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        decoder = codecs.getincrementaldecoder(self._encoding)(errors="replace")
        fd = self._proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                tail = decoder.decode(b"", final=True)
                if tail:
                    self._queue.put(tail)
                self._queue.put(None)
                return
            text = decoder.decode(chunk)
            if text:
                self._queue.put(text)

    def _pump_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in iter(self._proc.stderr.readline, b""):
            self._stderr.append(raw.decode(self._encoding, errors="replace"))
            del self._stderr[:-200]

    def write(self, text: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(text.encode(self._encoding, errors="strict"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise DebuggerDiedError(f"cdb stopped reading its input ({e}); {self._status()}") from e

    def read(self, timeout: Optional[float]) -> Optional[str]:
        if self._eof:
            return None
        try:
            item = (
                self._queue.get(timeout=timeout)
                if timeout is None or timeout > 0
                else self._queue.get_nowait()
            )
        except queue.Empty:
            return ""
        if item is None:
            self._eof = True
        return item

    def interrupt(self) -> None:
        if not self._proc or self._proc.poll() is not None:
            return
        if IS_WINDOWS:
            self._proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            self._proc.send_signal(signal.SIGINT)  # the replay test double only

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        if not self._proc:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_tree(self) -> None:
        """End cdb and every process it started in its group (a Store alias starts a child).
        The debuggee is not in that group: on Windows it is not a child of the group's tree
        when attached, and ``-pd`` keeps it alive when cdb dies."""
        proc = self._proc
        if not proc or proc.poll() is not None:
            return
        if IS_WINDOWS:
            subprocess.run(
                ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        else:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group we created for this process
            except (ProcessLookupError, PermissionError):
                proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("cdb (pid %s) did not end after being killed", proc.pid)

    def stderr_text(self) -> str:
        return "".join(self._stderr)

    def _status(self) -> str:
        code = self._proc.poll() if self._proc else None
        return f"exit status {code}" if code is not None else "still running"


class WexpectTransport:
    """cdb under ``wexpect`` (Windows only; ``pip install wexpect``). Use it when cdb's output
    through plain pipes is held back by buffering on a given system."""

    def __init__(self, encoding: Optional[str] = None) -> None:
        try:
            import wexpect  # type: ignore[import-not-found]
        except ImportError as e:
            raise DebuggerNotFoundError(
                "transport='wexpect' needs the wexpect package (Windows only): pip install wexpect"
            ) from e
        self._wexpect = wexpect
        self._child: Any = None
        self._eof = False

    @property
    def pid(self) -> Optional[int]:
        return getattr(self._child, "pid", None)

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Optional[str]) -> None:
        self._child = self._wexpect.spawn(
            subprocess.list2cmdline(list(argv)),
            cwd=cwd,
            env=dict(env),
            encoding="utf-8",
            codec_errors="replace",
        )

    def write(self, text: str) -> None:
        self._child.send(text)

    def read(self, timeout: Optional[float]) -> Optional[str]:
        if self._eof:
            return None
        try:
            data = self._child.read_nonblocking(65536, timeout=-1 if timeout is None else timeout)
        except self._wexpect.TIMEOUT:
            return ""
        except self._wexpect.EOF:
            self._eof = True
            return None
        return str(data)

    def interrupt(self) -> None:
        if hasattr(self._child, "sendintr"):
            self._child.sendintr()
        else:
            self._child.kill(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._child.isalive():
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return getattr(self._child, "exitstatus", 0)

    def kill_tree(self) -> None:
        if self._child is not None and self._child.isalive():
            pid = self.pid
            if pid:
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], check=False, capture_output=True)
            self._child.terminate(force=True)

    def stderr_text(self) -> str:
        return ""


def make_transport(name: str, encoding: Optional[str] = None) -> Transport:
    if name == "pipes":
        return PipeTransport(encoding)
    if name == "wexpect":
        return WexpectTransport(encoding)
    raise ConfigurationError(
        f"unknown transport {name!r}: use 'pipes' or 'wexpect' (pykd has its own driver)"
    )


if sys.platform == "win32":  # pragma: no cover - documentation of the Windows-only constants
    assert hasattr(signal, "CTRL_BREAK_EVENT")
