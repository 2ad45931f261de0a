"""The same cdb commands through ``pykd.dbgCommand``: pydbgauto inside WinDbg/cdb, or in pykd's
standalone mode (``pykd.initialize()`` + attach/start).

Inside a debugger (``!py`` in WinDbg) the target already exists and belongs to the user:
this driver never detaches or quits it, and ``close()`` only removes what it set. In
standalone mode it attaches (or starts the process) itself and detaches on ``close()``.

Framing is not needed here (``dbgCommand`` returns one command's output), but the commands, the
user-string checks and the stop classification are the cdb driver's
(:mod:`pydbgauto.drivers.cdb_commands`, :mod:`pydbgauto.drivers.cdb_safety`): the same engine.
``pykd.go()`` blocks; a time limit on ``resume`` is kept by a timer that calls ``pykd.breakin()``
when pykd has it.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Optional, Sequence

from pydbgauto.drivers.base import DEFAULT, Driver, RawStop, StopKind, Target, TimeLimit
from pydbgauto.drivers.cdb_commands import (
    arm_commands,
    classify_stop,
    disarm_commands,
    load_sos_with,
    type_filter_commands,
    user_command,
    write_dump_with,
)
from pydbgauto.drivers.cdb_prompt import clean_reply, detect_runtime
from pydbgauto.errors import (
    ConfigurationError,
    DebuggerError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    NotDotnetError,
)

__all__ = ["PykdDriver"]


def _import_pykd() -> Any:
    try:
        import pykd  # type: ignore[import-not-found]
    except ImportError as e:
        raise DebuggerNotFoundError(
            "the pykd driver needs pykd (Windows only): pip install pykd, or run inside WinDbg with the "
            "pykd extension loaded (.load pykd; !py ...)"
        ) from e
    return pykd


class PykdDriver(Driver):
    """:class:`pydbgauto.drivers.base.Driver` over pykd. ``embedded=True``: already inside a
    debugger session (the default when pykd says it is attached to a process)."""

    name = "pykd"
    sos_prefix = "!"

    def __init__(
        self,
        target: Optional[Target] = None,
        *,
        sos_path: Optional[str] = None,
        embedded: Optional[bool] = None,
        pykd_module: Any = None,
    ) -> None:
        self._pykd = pykd_module if pykd_module is not None else _import_pykd()
        self.target = target
        self._sos_path = sos_path
        self._embedded = embedded
        self._pid: Optional[int] = target.pid if target else None
        self.runtime: Optional[str] = None
        self.sos_command: Optional[str] = None
        self._started = False
        self._closed = False

    @property
    def pid(self) -> Optional[int]:
        return self._pid

    @property
    def embedded(self) -> bool:
        return bool(self._embedded)

    def _cmd(self, command: str) -> str:
        try:
            return clean_reply(str(self._pykd.dbgCommand(command)))
        except Exception as e:  # pykd raises its own DbgException
            raise DebuggerError(f"pykd.dbgCommand({command!r}) failed: {e}") from e

    def start(self) -> None:
        pykd = self._pykd
        if self._embedded is None:
            self._embedded = bool(getattr(pykd, "isWindbgExt", lambda: False)())
        if not self._embedded:
            if self.target is None:
                raise ConfigurationError("standalone pykd needs a Target (pid or argv)")
            pykd.initialize()
            if self.target.pid is not None:
                pykd.attachProcess(self.target.pid)
            elif self.target.argv:
                import subprocess

                pid = pykd.startProcess(subprocess.list2cmdline(list(self.target.argv)))
                self._pid = int(pid) if pid else None
            else:
                raise ConfigurationError("pykd cannot attach by name; pass a pid")
        if self._pid is None:
            self._pid = int(pykd.getCurrentProcessId()) if hasattr(pykd, "getCurrentProcessId") else None
        self.runtime = detect_runtime(self._cmd("lm"))
        if self.runtime is None:
            raise NotDotnetError("no .NET runtime (coreclr, clr, mscorwks) in the module list")
        sos = self._sos_path if self.runtime == "coreclr" else None
        self.sos_command = load_sos_with(self._cmd, self.runtime, sos)
        self._started = True

    def execute(
        self,
        command: str,
        timeout: TimeLimit = DEFAULT,  # pykd's dbgCommand has no time limit: it runs inside the debugger
        *,
        thread_id: Optional[int] = None,
        allow_dangerous: bool = False,
    ) -> str:
        refusal = "'q' ends the target; the pykd driver never sends it"
        command = user_command(
            command, thread_id=thread_id, allow_dangerous=allow_dangerous, refuse_quit=refusal
        )
        return self._cmd(command)

    def arm_clr_exceptions(self) -> None:
        for command in arm_commands():
            self._cmd(command)

    def disarm_clr_exceptions(self) -> None:
        for command in disarm_commands():
            self._cmd(command)

    def set_type_filter(self, type_names: Sequence[str], derived: bool) -> None:
        for command in type_filter_commands(type_names, derived):
            self._cmd(command)

    def resume(self, timeout: Optional[float]) -> RawStop:
        pykd = self._pykd
        timer: Optional[threading.Timer] = None
        fired = threading.Event()
        if timeout is not None and hasattr(pykd, "breakin"):

            def fire() -> None:
                fired.set()
                pykd.breakin()

            timer = threading.Timer(timeout, fire)
            timer.start()
        try:
            pykd.go()
        except Exception as e:
            text = str(e)
            if "no" in text.lower() and "process" in text.lower():
                return RawStop(kind=StopKind.EXIT, description=text)
            raise DebuggerError(f"pykd.go() failed: {e}") from e
        finally:
            if timer is not None:
                timer.cancel()
        if fired.is_set():
            raise DebuggerTimeoutError(f"the target did not stop within {timeout} s; broke in")
        return classify_stop("", self._cmd(".lastevent"))

    def write_dump(self, path: str, timeout: Optional[float], *, options: str = "/ma") -> None:
        write_dump_with(self._cmd, path, options, debugger="pykd")

    def versions(self) -> Mapping[str, str]:
        out = {"debugger": "pykd"}
        version = getattr(self._pykd, "__version__", None) or getattr(self._pykd, "version", None)
        if version:
            out["pykd"] = str(version)
        if self.runtime:
            out["runtime"] = self.runtime
        if self.sos_command:
            out["sos"] = self.sos_command
        return out

    def detach(self) -> None:
        if self._embedded or self._closed or not self._started:
            return
        try:
            self._pykd.detachAllProcesses()
        finally:
            self._closed = True

    def close(self) -> None:
        if self._embedded:
            self._closed = True  # the user's own session: leave it as it is
            return
        self.detach()
