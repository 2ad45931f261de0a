"""Drive cdb.exe (Windows) over pipes: one framed command at a time, CLR exception stops,
SOS, full dumps, and leaving the target alive.

Guarantees:

- **Framing.** Every command goes out as three lines: a ``.printf`` that prints a start
  marker, the command, a ``.printf`` that prints the end marker, with a fresh random
  token (:mod:`pydbgauto.drivers.framing`). A reply is the text between the two markers
  of its token; late output of an older command is never taken for a newer reply.
- **Time limits.** Each command and each resume has a limit (``None`` = wait forever).
  Past it the driver breaks in (CTRL_BREAK_EVENT to cdb's own process group on Windows),
  waits for the command's end marker so the stream is in step again, and raises
  :class:`~pydbgauto.errors.DebuggerTimeoutError` with the target stopped.
- **The target survives.** cdb always starts with ``-pd``; the driver leaves with ``qd``
  (on close, on errors, on Ctrl-C) and never sends ``q`` to a live target. If cdb does not
  answer, its process tree is ended; the target is not.
- **Nothing smuggled.** User strings (dump paths, type names, symbol paths, ``execute()``
  text) are checked by :mod:`pydbgauto.drivers.cdb_safety` before anything is sent.

Stops are classified from the event banners in the reply to ``g`` and from ``.lastevent``,
both read by :func:`pydbgauto.sos.events.parse_events`; ``.dump`` replies by
:func:`pydbgauto.sos.dump_reply.parse_dump_result`. The driver does not interpret SOS
output: the Session runs ``!pe``/``!clrstack`` through :meth:`CdbDriver.execute`.

On POSIX the same code drives the replay test double (``tests/doubles/``): there "break
in" is SIGINT to the double's process. That path exists for the double only.
"""

from __future__ import annotations

import codecs
import locale
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol, Sequence

from pydbgauto.drivers.base import (
    DEFAULT,
    Driver,
    RawStop,
    StopKind,
    Target,
    TimeLimit,
    command_line_preview,
    resolve_timeout,
)
from pydbgauto.drivers.cdb_locate import default_symbol_path, find_cdb, find_coreclr_sos
from pydbgauto.drivers.cdb_prompt import (
    PROMPT_RE,
    clean_reply,
    debugger_version,
    detect_runtime,
    ends_with_prompt,
    marker_command,
)
from pydbgauto.drivers.cdb_safety import (
    check_command,
    check_dump_path,
    check_image_name,
    check_symbol_path,
    check_type_names,
    quote_path,
)
from pydbgauto.drivers.framing import ReplyBuffer, new_token
from pydbgauto.errors import (
    ConfigurationError,
    DebuggerDiedError,
    DebuggerError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DumpError,
    DumpVerificationError,
    NoSuchProcessError,
    NotDotnetError,
    ParseError,
    SosError,
    TargetExitedError,
)

if TYPE_CHECKING:
    from pydbgauto.models import DumpRecord, StopEvent

__all__ = [
    "CLR_EXCEPTION_CODES",
    "CdbConsole",
    "CdbDriver",
    "PipeTransport",
    "Transport",
    "WexpectTransport",
    "build_command_line",
    "sos_load_commands",
    "thread_command",
    "read_dump_with_cdb",
    "type_filter_command",
    "verify_dump_with_cdb",
]

log = logging.getLogger(__name__)

IS_WINDOWS = os.name == "nt"

# CLR 4+/.NET Core ("CCR" + 0xe0000000) and CLR 1.x-2.0 ("COM").
CLR_EXCEPTION_CODES = (0xE0434352, 0xE0434F4D)
_CLR_FILTERS = ("clr", "e0434352", "e0434f4d")
_BREAKPOINT_CODE = 0x80000003

DUMP_OPTIONS = frozenset({"/ma", "/mA", "/mfFhut", "/m", "/mh", "/mi"})

_DEFAULT_RESYNC_TIMEOUT = 15.0


_DEFAULT_QUIT_TIMEOUT = 10.0


# ---------------------------------------------------------------------------------------------
# Pure parts: command line, SOS selection, in-debugger type filter


def build_command_line(
    cdb: str,
    target: Target,
    *,
    symbol_path: str,
    init_file: str,
    extra: Sequence[str] = (),
) -> list[str]:
    """cdb's argv for ``target``: always ``-pd -noshell -cf <empty> -lines -y <symbols>``,
    then ``-p PID``, ``-pn NAME``, or (launch) ``-2 -noinh -hd`` and the target's argv last."""
    check_symbol_path(symbol_path)
    argv = [cdb, "-pd", "-noshell", "-cf", init_file, "-lines", "-y", symbol_path, *extra]
    chosen = [x is not None for x in (target.argv, target.pid, target.name)]
    if sum(chosen) != 1:
        raise ConfigurationError("a Target needs exactly one of argv (launch), pid or name (attach)")
    if target.pid is not None:
        if not isinstance(target.pid, int) or isinstance(target.pid, bool) or target.pid <= 0:
            raise ConfigurationError(f"pid must be a positive integer, not {target.pid!r}")
        argv += ["-p", str(target.pid)]
    elif target.name is not None:
        argv += ["-pn", check_image_name(target.name)]
    else:
        assert target.argv is not None
        if not target.argv:
            raise ConfigurationError("launching needs a non-empty argv")
        for arg in target.argv:
            if "\n" in arg or "\r" in arg or "\x00" in arg:
                raise ConfigurationError(f"argument {arg!r} of the target contains a line break or NUL")
        # -2: a console target gets its own console; -noinh: it inherits none of cdb's handles,
        # so its output never lands in cdb's pipe; -hd: the normal (not the debug) heap.
        argv += ["-2", "-noinh", "-hd", *target.argv]
    return argv


def sos_load_commands(runtime: str, sos_path: Optional[str]) -> list[str]:
    """The commands that load SOS for ``runtime`` (``clr``, ``mscorwks`` or ``coreclr``)."""
    if runtime == "clr":
        return [".loadby sos clr"]
    if runtime == "mscorwks":
        return [".loadby sos mscorwks"]
    if runtime == "coreclr":
        if sos_path:
            check_dump_path(sos_path, windows=IS_WINDOWS)  # same character rules as any path
            return [f".load {quote_path(sos_path) if ' ' in sos_path else sos_path}"]
        return [".loadby sos coreclr"]
    raise ConfigurationError(f"unknown runtime {runtime!r}: expected clr, mscorwks or coreclr")


_SOS_LOAD_FAILURES = re.compile(
    r"(?i)(unable to find module|the call to loadlibrary\([^)]*\) failed|couldn't load|"
    r"failed to load|no export|not a valid extension|sos does not support)"
)


def type_filter_command(type_names: Sequence[str], derived: bool) -> str:
    """The ``-c`` text that makes cdb continue, inside the debugger, every CLR exception whose
    type is not one of ``type_names`` (SOS ``!soe`` sets ``$t1..$tN``; what ``!soe -create``
    installs, for several types at once)."""
    names = check_type_names(type_names)
    if not names:
        raise ConfigurationError("a type filter needs at least one type name")
    if len(names) > 19:
        raise ConfigurationError("at most 19 type names fit in cdb's pseudo-registers $t1..$t19")
    flag = "-derived " if derived else ""
    soes = ";".join(f"!soe {flag}{name} {i}" for i, name in enumerate(names, start=1))
    any_hit = "|".join(f"@$t{i}" for i in range(1, len(names) + 1))
    return f"{soes};.if(({any_hit})==0) {{g}} .else {{.echo 'pydbgauto: type filter hit'}}"


def thread_command(command: str, thread_id: int) -> str:
    """``command`` run on the thread whose OS thread id is ``thread_id``: ``~~[0x<tid>]e <command>``
    (``~e`` runs a command on one thread without changing cdb's current thread)."""
    if not isinstance(thread_id, int) or isinstance(thread_id, bool) or not 0 < thread_id <= 0xFFFFFFFF:
        raise ConfigurationError(f"thread_id must be a positive 32-bit OS thread id, not {thread_id!r}")
    if command.lstrip().startswith("~"):
        raise ConfigurationError(f"{command!r} already names its thread(s); do not pass thread_id as well")
    return f"~~[0x{thread_id:x}]e {command.strip()}"


# ---------------------------------------------------------------------------------------------
# Transports


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


# ---------------------------------------------------------------------------------------------
# One cdb process: start, wait for the prompt, framed commands, leave


class CdbConsole:
    """A running cdb and the framed command exchange with it. Knows nothing about targets."""

    def __init__(
        self,
        transport: Transport,
        *,
        resync_timeout: float = _DEFAULT_RESYNC_TIMEOUT,
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
        deadline = _deadline(timeout)
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
        body = self._wait(token, _deadline(timeout))
        if body is not None:
            self._in_flight = False
            return clean_reply(body)
        log.info("%s ran past %s s; breaking in", what, timeout)
        self.transport.interrupt()
        body = self._wait(token, _deadline(self._resync_timeout))
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


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: Optional[float], cap: float) -> float:
    if deadline is None:
        return cap
    return max(0.0, min(cap, deadline - time.monotonic()))


def _expired(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _tail(text: str, n: int = 600) -> str:
    return text[-n:]


# ---------------------------------------------------------------------------------------------
# The driver


class CdbDriver(Driver):
    """The cdb implementation of :class:`pydbgauto.drivers.base.Driver`."""

    name = "cdb"
    sos_prefix = "!"
    supports_break_in = True

    def __init__(
        self,
        target: Target,
        *,
        cdb_path: Optional[str] = None,
        symbol_path: Optional[str] = None,
        sos_path: Optional[str] = None,
        transport: str = "pipes",
        command_timeout: Optional[float] = 60.0,
        startup_timeout: Optional[float] = 120.0,
        resync_timeout: float = _DEFAULT_RESYNC_TIMEOUT,
        encoding: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.target = target
        self.command_timeout = command_timeout
        self.startup_timeout = startup_timeout
        self._env = dict(os.environ if env is None else env)
        self._cdb_path = cdb_path
        self._symbol_path = check_symbol_path(symbol_path or default_symbol_path(self._env))
        self._sos_path = sos_path
        self._transport_name = transport
        self._encoding = encoding
        self._resync_timeout = resync_timeout
        self._console: Optional[CdbConsole] = None
        self._init_file: Optional[str] = None
        self._pid: Optional[int] = target.pid
        self.runtime: Optional[str] = None
        self.sos_command: Optional[str] = None
        self.armed = False
        self.type_filter: tuple[tuple[str, ...], bool] | None = None
        self.argv: list[str] = []
        self.last_stop: Optional[RawStop] = None
        self._break_cond = threading.Condition()  # break_in from another thread while resume runs
        self._resuming = False
        self._break_requested = False
        self._break_result: Optional[RawStop] = None

    # -- Driver protocol --------------------------------------------------------------------
    @property
    def pid(self) -> Optional[int]:
        return self._pid

    def start(self) -> None:
        if self._console is not None:
            raise DebuggerError("this CdbDriver has already been started")
        cdb = find_cdb(self._cdb_path, env=self._env)
        fd, self._init_file = tempfile.mkstemp(prefix="pydbgauto-", suffix=".cdbinit")
        os.close(fd)  # -cf with an empty file: no ntsd.ini from the current folder runs
        self.argv = build_command_line(
            cdb, self.target, symbol_path=self._symbol_path, init_file=self._init_file
        )
        env = dict(self._env)
        cwd = None
        if not self.target.attaching:
            env.update(self.target.env)
            cwd = self.target.cwd
        self._console = CdbConsole(
            make_transport(self._transport_name, self._encoding), resync_timeout=self._resync_timeout
        )
        try:
            self._console.start(self.argv, env, cwd, self.startup_timeout)
            self._setup()
        except BaseException:
            self._leave()
            raise

    def execute(
        self,
        command: str,
        timeout: TimeLimit = DEFAULT,
        *,
        thread_id: Optional[int] = None,
        allow_dangerous: bool = False,
    ) -> str:
        """Run one cdb command while stopped and return its output (prompts and symbol noise removed).

        ``timeout``: seconds, ``None`` for no limit, or the driver's ``command_timeout`` if left out.
        ``thread_id``: the OS thread id (as in ``RawStop.thread_id``) to run the command on, sent
        as ``~~[0x<tid>]e <command>``; cdb's current thread is left as it was.
        Refuses line breaks always, and commands that end, detach or resume the target, run
        programs or scripts, or write files unless ``allow_dangerous=True``. ``q``/``qq`` are
        refused in attach mode even then (they would end the target).
        """
        check_command(command, allow_dangerous=allow_dangerous)
        if self.target.attaching and command.strip().lower() in ("q", "qq"):
            from pydbgauto.errors import UnsafeInputError

            raise UnsafeInputError("'q' ends an attached target; pydbgauto leaves with 'qd' (close())")
        if thread_id is not None:
            command = thread_command(command, thread_id)
        return self._run([command], self._timeout(timeout), what=f"command {command!r}")

    def arm_clr_exceptions(self) -> None:
        self._run([f"sxe {f}" for f in _CLR_FILTERS], self.command_timeout, what="sxe clr")
        self.armed = True

    def disarm_clr_exceptions(self) -> None:
        # sxd, not sxi: sxd is documented to break at the second chance, so an unhandled
        # exception still stops; the cost is one printed line per first-chance exception.
        self._run(
            [f'sx- -c "" {f}' for f in _CLR_FILTERS] + [f"sxd {f}" for f in _CLR_FILTERS],
            self.command_timeout,
            what="sxd clr",
        )
        self.armed = False
        self.type_filter = None

    def set_type_filter(self, type_names: Sequence[str], derived: bool) -> None:
        """Continue, inside cdb, every CLR exception whose type is not in ``type_names``
        (or, with ``derived``, not derived from one of them). An empty list removes the filter.
        Second-chance exceptions always stop."""
        if not type_names:
            self._run(
                [f'sx- -c "" {f}' for f in _CLR_FILTERS], self.command_timeout, what="clear type filter"
            )
            self.type_filter = None
            return
        command = type_filter_command(type_names, derived)
        self._run([f'sxe -c "{command}" {f}' for f in _CLR_FILTERS], self.command_timeout, what="type filter")
        self.type_filter = (tuple(type_names), derived)
        self.armed = True

    def resume(self, timeout: Optional[float]) -> RawStop:
        with self._break_cond:
            self._resuming = True
        stop: Optional[RawStop] = None
        try:
            try:
                body = self._run(["g"], timeout, what="resume (g)")
            except KeyboardInterrupt:
                self._leave()
                raise
            lastevent = self._run([".lastevent"], self.command_timeout, what=".lastevent")
            stop = classify_stop(body, lastevent)
            if self._break_requested and stop.kind is StopKind.OTHER:
                # our own break-in: cdb reports it as a break instruction on a thread it injected
                stop = RawStop(
                    StopKind.BREAK, thread_id=stop.thread_id, description=stop.description, text=stop.text
                )
        finally:
            with self._break_cond:
                self._resuming = self._break_requested = False
                self._break_result = stop
                self._break_cond.notify_all()
        assert stop is not None
        if stop.kind is StopKind.EXIT:
            log.info("target exited: %s", stop.description)
        self.last_stop = stop
        return stop

    def break_in(self, timeout: Optional[float] = 30.0) -> RawStop:
        """Stop the target now: while ``resume`` runs in another thread, break in (Ctrl+Break to cdb's
        process group, as for a time limit) and return the stop that ``resume`` returns too (kind BREAK,
        or the event that won the race). Otherwise the target is already stopped (attach stops it, and
        cdb runs it only inside ``resume``): a BREAK stop on the last event's thread."""
        with self._break_cond:
            if self._resuming:
                if self._console is None or self._console.ended:
                    raise DebuggerDiedError("cdb has already ended")
                if not self._break_requested:
                    self._break_requested = True
                    self._console.transport.interrupt()
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._resuming:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise DebuggerTimeoutError(f"cdb did not break in within {timeout} s")
                    self._break_cond.wait(remaining)
                if self._break_result is None:
                    raise DebuggerError("the wait that was broken into failed; see the error it raised")
                return self._break_result
        thread = self.last_stop.thread_id if self.last_stop is not None else None
        return RawStop(StopKind.BREAK, thread_id=thread, description="stopped under the debugger")

    def write_dump(self, path: str, timeout: Optional[float], *, options: str = "/ma") -> None:
        """``.dump /ma "<path>"`` to exactly ``path`` (absolute, new). Success only when cdb says
        ``Dump successfully written`` and the file exists and is not empty."""
        check_dump_path(path, windows=IS_WINDOWS)
        if options not in DUMP_OPTIONS:
            raise ConfigurationError(f"dump options {options!r}: use one of {sorted(DUMP_OPTIONS)}")
        if os.path.exists(path):
            raise DumpError(f"{path} already exists; pydbgauto never overwrites a dump")
        reply = self._run([f".dump {options} {quote_path(path)}"], self._timeout(timeout), what=".dump")
        from pydbgauto.sos.dump_reply import parse_dump_result

        try:
            result = parse_dump_result(reply)
        except ParseError:
            raise DumpError(f"cdb's reply to .dump is not understood: {reply.strip()[-300:]!r}") from None
        if not result.success:
            raise DumpError(f"cdb could not write {path}: {result.error or reply.strip()[-300:]}")
        try:
            size = os.path.getsize(path)
        except OSError:
            raise DumpError(f"cdb said the dump was written, but {path} does not exist") from None
        if size <= 0:
            raise DumpError(f"cdb said the dump was written, but {path} is empty")

    def versions(self) -> Mapping[str, str]:
        out = {"debugger": "cdb"}
        if self._console is not None:
            v = debugger_version(self._console.banner)
            if v:
                out["cdb"] = v
        if self.runtime:
            out["runtime"] = self.runtime
        if self.sos_command:
            out["sos"] = self.sos_command
        return out

    def verify_dump(
        self, record: "DumpRecord", expect: "Optional[StopEvent]", *, timeout: Optional[float] = 300.0
    ) -> "DumpRecord":
        """Reopen a dump this driver wrote with a second, independent ``cdb -z`` (same cdb.exe):
        it must show a last event, on ``expect``'s thread, and SOS (loaded as in this session)
        must show ``expect``'s exception type at its address. Returns ``record`` with
        ``verified`` and what was seen; never raises for a mismatch. The Session's verifier."""
        import attr

        from pydbgauto.sos import parse_pe
        from pydbgauto.sos.events import parse_events

        started = time.monotonic()
        if expect is not None and expect.kind == "break":
            return self._verify_snapshot_dump(record, timeout, started)
        commands = [".lastevent", ".prompt_allow -dis -ea -reg -src -sym", "!sym quiet", ".outmask- 0x244"]
        want_exception = expect is not None and expect.exception is not None
        if want_exception and self.sos_command:
            commands.append(self.sos_command)
            address = expect.exception_address if expect is not None else None
            commands.append(f"!pe 0x{address:x}" if address else "!pe")
        problems: list[str] = []
        seen_type: Optional[str] = None
        seen_thread: Optional[int] = None
        try:
            replies = read_dump_with_cdb(
                record.path,
                commands,
                cdb_path=self._cdb_path,
                timeout=timeout,
                env=self._env,
                transport=self._transport_name,
            )
        except DumpVerificationError as e:
            return attr.evolve(
                record,
                verified=False,
                reader="cdb -z",
                verify_error=str(e),
                verify_seconds=time.monotonic() - started,
            )
        events = parse_events(replies[0])
        if events:
            seen_thread = events[-1].tid
        if expect is not None and expect.thread_id is not None and seen_thread != expect.thread_id:
            problems.append(
                f"the dump's last event is on thread {seen_thread:#x}, expected {expect.thread_id:#x}"
                if seen_thread is not None
                else "the dump's last event names no thread"
            )
        if want_exception:
            assert expect is not None and expect.exception is not None
            if not self.sos_command:
                problems.append("SOS was not loaded in this session, so the dump's exception was not read")
            else:
                if _SOS_LOAD_FAILURES.search(replies[-2]):
                    problems.append(f"{commands[-2]} failed in the dump: {replies[-2].strip()[-200:]!r}")
                try:
                    seen = parse_pe(replies[-1])
                except (ParseError, SosError) as e:
                    seen = None
                    problems.append(f"!pe on the dump: {e}")
                if seen is not None:
                    seen_type = seen.type
                    if seen.type != expect.exception.type:
                        problems.append(f"saw {seen.type}, expected {expect.exception.type}")
                elif not problems:
                    problems.append("no exception object in the dump")
        return attr.evolve(
            record,
            verified=not problems,
            reader="cdb -z",
            verify_seconds=time.monotonic() - started,
            verify_error="; ".join(problems) or None,
            seen_exception_type=seen_type,
            seen_thread_id=seen_thread,
        )

    def _verify_snapshot_dump(
        self, record: "DumpRecord", timeout: Optional[float], started: float
    ) -> "DumpRecord":
        """A dump taken at a break-in (no exception of its own): ``cdb -z`` must list the threads
        (``~``) and, with SOS, ``!threads`` must show at least one managed thread."""
        import attr

        from pydbgauto.sos import parse_threads

        commands = [
            ".lastevent",
            ".prompt_allow -dis -ea -reg -src -sym",
            "!sym quiet",
            ".outmask- 0x244",
            "~",
        ]
        if self.sos_command:
            commands += [self.sos_command, "!threads"]
        problems: list[str] = []
        try:
            replies = read_dump_with_cdb(
                record.path,
                commands,
                cdb_path=self._cdb_path,
                timeout=timeout,
                env=self._env,
                transport=self._transport_name,
            )
        except DumpVerificationError as e:
            return attr.evolve(
                record,
                verified=False,
                reader="cdb -z",
                verify_error=str(e),
                verify_seconds=time.monotonic() - started,
            )
        if not _THREAD_LINE.search(replies[4]):
            problems.append(f"~ lists no thread in the dump: {replies[4].strip()[-200:]!r}")
        if not self.sos_command:
            problems.append("SOS was not loaded in this session, so the dump's managed threads were not read")
        else:
            try:
                table = parse_threads(replies[-1])
            except (ParseError, SosError) as e:
                table = None
                problems.append(f"!threads on the dump: {e}")
            if table is not None and not table.threads:
                problems.append("!threads lists no managed thread in the dump")
        return attr.evolve(
            record,
            verified=not problems,
            reader="cdb -z",
            verify_seconds=time.monotonic() - started,
            verify_error="; ".join(problems) or None,
        )

    def detach(self) -> None:
        self._leave()

    def close(self) -> None:
        self._leave()
        if self._init_file:
            try:
                os.unlink(self._init_file)
            except OSError:
                pass
            self._init_file = None

    def __enter__(self) -> "CdbDriver":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _timeout(self, timeout: TimeLimit) -> Optional[float]:
        return resolve_timeout(timeout, self.command_timeout)

    def _run(self, lines: Sequence[str], timeout: Optional[float], *, what: str) -> str:
        if self._console is None:
            raise DebuggerError("the cdb driver is not started")
        try:
            return self._console.run(lines, timeout, what=what)
        except KeyboardInterrupt:
            self._leave()
            raise

    def _leave(self) -> None:
        console = self._console
        if console is None or console.ended:
            return
        console.quit_detached()

    def _setup(self) -> None:
        t = self.command_timeout
        self._run([], t, what="first sync")
        self._run(
            [".prompt_allow -dis -ea -reg -src -sym", "!sym quiet", ".outmask- 0x244", "sxe epr"],
            t,
            what="setup",
        )
        self._pid = self._pid or _process_id(self._run(["|."], t, what="|."))
        self.runtime = detect_runtime(self._run(["lm"], t, what="lm"))
        if self.runtime is None and not self.target.attaching:
            self.runtime = self._run_until_runtime_loads()
        if self.runtime is None:
            raise NotDotnetError(
                f"process {self._pid} has no .NET runtime loaded (none of coreclr, clr, mscorwks in 'lm')"
            )
        self._load_sos()

    def _run_until_runtime_loads(self) -> Optional[str]:
        """Launch: stop at every module load until a CLR is in; SOS can then load before the
        first managed exception (only one ``ld:`` filter is kept, so ``sxe ld`` for all)."""
        deadline = _deadline(self.startup_timeout)
        self._run(["sxe ld"], self.command_timeout, what="sxe ld")
        try:
            while True:
                remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
                body = self._run(["g"], remaining, what="run to the runtime's module load")
                if "No runnable debuggees" in body:
                    raise TargetExitedError("the target exited before a .NET runtime loaded")
                runtime = detect_runtime(self._run(["lm"], self.command_timeout, what="lm"))
                if runtime:
                    return runtime
                last = self._run([".lastevent"], self.command_timeout, what=".lastevent")
                if "Exit process" in last:
                    raise TargetExitedError("the target exited before a .NET runtime loaded")
        finally:
            if self._console is not None and not self._console.ended and not self._console.broken:
                self._run(["sxn ld"], self.command_timeout, what="sxn ld")

    def _load_sos(self) -> None:
        assert self.runtime is not None
        sos = self._sos_path
        if self.runtime == "coreclr" and sos is None:
            sos = find_coreclr_sos(env=self._env)
        elif sos is not None:
            sos = find_coreclr_sos(sos, env=self._env)
        commands = sos_load_commands(self.runtime, sos if self.runtime == "coreclr" else None)
        for command in commands:
            reply = self._run([command], self.command_timeout, what=command)
            m = _SOS_LOAD_FAILURES.search(reply)
            if m:
                raise SosError(
                    f"{command} failed: {reply.strip()[-400:]!r}. For .NET Core install SOS with "
                    "'dotnet tool install -g dotnet-sos' and 'dotnet-sos install', "
                    "or pass sos_path=<sos.dll>."
                )
            self.sos_command = command


_THREAD_LINE = re.compile(r"^[ .#]\s*\d+\s+Id:\s*[0-9a-fA-F]+\.[0-9a-fA-F]+", re.MULTILINE)


def _process_id(text: str) -> Optional[int]:
    m = re.search(r"\bid:\s*([0-9a-fA-F]+)\b", text)
    return int(m.group(1), 16) if m else None


def classify_stop(body: str, lastevent: str) -> RawStop:
    """Why the target stopped, from the reply to ``g`` and the output of ``.lastevent``."""
    from pydbgauto.sos.events import parse_events

    text = body + ("\n" + lastevent if lastevent else "")
    if "No runnable debuggees" in body:
        return RawStop(kind=StopKind.EXIT, description="no runnable debuggees", text=text)
    events = parse_events(lastevent) or parse_events(body)
    if not events:
        return RawStop(kind=StopKind.OTHER, description=lastevent.strip() or "unknown stop", text=text)
    event = events[-1]
    description = str(event)
    if event.description.lower().startswith("exit process"):
        m = re.search(r"code\s+([0-9a-fA-Fx]+)", event.description)
        status = int(m.group(1), 16) if m else None
        return RawStop(
            kind=StopKind.EXIT, thread_id=event.tid, exit_status=status, description=description, text=text
        )
    if event.code in CLR_EXCEPTION_CODES or event.description.startswith("CLR exception"):
        kind = StopKind.SECOND_CHANCE if event.chance == 2 else StopKind.FIRST_CHANCE
        return RawStop(kind=kind, thread_id=event.tid, description=description, text=text)
    if event.chance == 2:
        return RawStop(kind=StopKind.SECOND_CHANCE, thread_id=event.tid, description=description, text=text)
    return RawStop(kind=StopKind.OTHER, thread_id=event.tid, description=description, text=text)


# ---------------------------------------------------------------------------------------------
# Verification by reopening a dump


def verify_dump_with_cdb(
    path: str,
    *,
    cdb_path: Optional[str] = None,
    timeout: Optional[float] = 120.0,
    env: Optional[Mapping[str, str]] = None,
    transport: str = "pipes",
) -> str:
    """Open ``path`` with ``cdb -z`` and return its ``.lastevent`` text; DumpVerificationError
    if cdb cannot open it."""
    return read_dump_with_cdb(
        path, [".lastevent"], cdb_path=cdb_path, timeout=timeout, env=env, transport=transport
    )[0]


def read_dump_with_cdb(
    path: str,
    commands: Sequence[str],
    *,
    cdb_path: Optional[str] = None,
    timeout: Optional[float] = 120.0,
    env: Optional[Mapping[str, str]] = None,
    transport: str = "pipes",
) -> list[str]:
    """Open ``path`` with a new ``cdb -z`` and run ``commands[0]`` (which must print a
    ``Last event``) and then the others; return their replies. These commands are pydbgauto's
    own (SOS loading included), never user text. DumpVerificationError if cdb cannot open the
    dump or shows no last event."""
    check_dump_path(path, windows=IS_WINDOWS)
    if not os.path.isfile(path):
        raise DumpVerificationError(f"{path} does not exist")
    environ = dict(os.environ if env is None else env)
    cdb = find_cdb(cdb_path, env=environ)
    fd, init_file = tempfile.mkstemp(prefix="pydbgauto-", suffix=".cdbinit")
    os.close(fd)
    console = CdbConsole(make_transport(transport))
    replies: list[str] = []
    try:
        argv = [cdb, "-noshell", "-cf", init_file, "-z", path]
        try:
            console.start(argv, environ, None, timeout)
            for command in commands:
                replies.append(console.run([command], timeout, what=command))
        except (DebuggerError, TargetExitedError, NoSuchProcessError) as e:
            raise DumpVerificationError(f"cdb -z could not open {path}: {e}") from e
        if not replies or "Last event" not in replies[0]:
            raise DumpVerificationError(
                f"cdb -z opened {path} but shows no last event: {(replies or [''])[0].strip()[-300:]!r}"
            )
        return replies
    finally:
        if not console.ended:
            try:
                console.send_raw("q")  # a dump, not a live target: q is safe here
            except DebuggerError:
                pass
            if console.transport.wait(10) is None:
                console.kill()
        try:
            os.unlink(init_file)
        except OSError:
            pass


if sys.platform == "win32":  # pragma: no cover - documentation of the Windows-only constants
    assert hasattr(signal, "CTRL_BREAK_EVENT")
