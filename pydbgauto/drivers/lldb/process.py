"""The lldb process of the driver: starting it with its watchdog and guardian, launching or attaching
the target through the agent, and leaving so that no lldb, lldb-server or int3 stays behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any, Dict, List, Optional

from pydbgauto import locate, processes, ptrace_access, single_file
from pydbgauto.drivers.base import Target
from pydbgauto.drivers.lldb import guardian, protocol
from pydbgauto.drivers.lldb.channel import AgentChannel
from pydbgauto.drivers.lldb.embedded_python import agent_path_line, lldb_environment, target_environment
from pydbgauto.errors import DebuggerDiedError, DebuggerNotFoundError, NoSuchProcessError, NotDotnetError
from pydbgauto.errors import TargetError

log = logging.getLogger(__name__)

WATCHDOG_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watchdog.py")
AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")
# A launched target's stdout and stderr, in output_dir (pydbgauto watch shows them: cli/target_output.py)
TARGET_STDOUT = "target.stdout"
TARGET_STDERR = "target.stderr"
QUIT_TIMEOUT = 5.0  # how long lldb may take to quit before it is killed
# How long a killed lldb may take to go: a thread in uninterruptible I/O (a loaded disk) holds its exit
# until that I/O ends; SIGKILL cannot cut it short.
KILLED_WAIT = 60.0
KILLED_WARN = 10.0  # when to say so


def program_path(program: str, search_path: Optional[str]) -> str:
    """The file a launch runs: ``program`` itself when it names a path, else found on ``search_path``
    (the target's PATH) as a shell would: ``-- dotnet App.dll`` runs /usr/bin/dotnet."""
    if "/" in program:
        found: Optional[str] = program if os.path.exists(program) else None
    else:
        found = shutil.which(program, path=search_path)
    if found is None:
        where = "no such file" if "/" in program else f"not found on PATH ({search_path or 'empty'})"
        raise TargetError(f"cannot launch {program}: {where}")
    if not os.access(found, os.X_OK) or os.path.isdir(found):
        raise TargetError(f"cannot launch {found}: not an executable file")
    return os.path.abspath(found)


class LldbProcess(AgentChannel):
    """The process half of LldbDriver (a base class of it; LldbDriver.__init__ sets the state)."""

    target: Target
    startup_timeout: Optional[float]
    target_stdout: Optional[str]
    target_stderr: Optional[str]
    _output_dir: Optional[str]
    _own_output_dir: Optional[str]
    _guardian: Optional[subprocess.Popen[bytes]]
    _watchdog: Optional[subprocess.Popen[bytes]]
    _python_dir: Optional[str]

    def _remove_output_dir(self) -> None:
        folder, self._own_output_dir = self._own_output_dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _spawn(self) -> None:
        reply_r, reply_w = os.pipe()
        cancel_r, cancel_w = os.pipe()
        self._python_dir = tempfile.mkdtemp(prefix="pydbgauto-lldb-python-")
        try:
            env, self._lldb_python = lldb_environment(self.lldb_path, os.environ, self._python_dir)
        except BaseException:
            shutil.rmtree(self._python_dir, ignore_errors=True)
            raise
        journal_w, self._guardian = guardian.start()  # restores the target's code if lldb dies
        # The owner tag lets tests (and doctor) tell our lldb processes from anyone else's.
        env.update(
            {
                "PYDBGAUTO_REPLY_FD": str(reply_w),
                "PYDBGAUTO_CANCEL_FD": str(cancel_r),
                "PYDBGAUTO_OWNER_PID": str(os.getpid()),
                guardian.GUARDIAN_FD_ENV: str(journal_w),
            }
        )
        try:
            self._proc = subprocess.Popen(
                [self.lldb_path, "--no-lldbinit", "--no-use-colors"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(reply_w, cancel_r, journal_w),
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            shutil.rmtree(self._python_dir, ignore_errors=True)
            raise DebuggerNotFoundError(f"cannot start {self.lldb_path}: {e}: {locate.INSTALL_HINT}") from e
        finally:
            os.close(reply_w)
            os.close(cancel_r)
            os.close(journal_w)
        self._reply_r, self._cancel_w = reply_r, cancel_w
        self._start_watchdog()
        threading.Thread(target=self._drain, daemon=True).start()
        self._send_line(agent_path_line())
        self._send_line(f"command script import {AGENT_PATH}")

    def _start_watchdog(self) -> None:
        """The watchdog that outlives us (watchdog.py here): it makes lldb let the target go should this
        process die while lldb waits (guardian.py here restores the code if lldb dies)."""
        assert self._proc is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYDBGAUTO_")}
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, WATCHDOG_PATH, str(self._proc.pid)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            log.warning("no watchdog for lldb (%s): a crash of Python may leave the target traced", e)

    def _tell_watchdog(self, line: str, last: bool = False) -> None:
        watchdog = self._watchdog
        if watchdog is None or watchdog.stdin is None:
            return
        try:
            watchdog.stdin.write(line.encode() + b"\n")
            watchdog.stdin.flush()
            if last:
                watchdog.stdin.close()
                watchdog.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if last:
            self._watchdog = None

    def _launch(self) -> Dict[str, Any]:
        assert self.target.argv is not None
        out_dir = self._output_dir
        if out_dir is None:  # removed at close: pass output_dir= to keep the target's output
            out_dir = self._own_output_dir = tempfile.mkdtemp(prefix="pydbgauto-")
        self.target_stdout = os.path.join(out_dir, TARGET_STDOUT)
        self.target_stderr = os.path.join(out_dir, TARGET_STDERR)
        for path in (self.target_stdout, self.target_stderr):
            # emptied first: lldb-server opens them without O_TRUNC (an earlier run's tail would stay);
            # owner-only, as the target's output may hold what its dumps hold
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        env = target_environment(self.target.env)
        argv = [program_path(self.target.argv[0], env.get("PATH"))] + list(self.target.argv[1:])
        if single_file.runtime_info(argv[0]) is not None:  # no coreclr_execute_assembly to stop at
            raise TargetError(
                f"{argv[0]} is a single-file .NET app: pydbgauto attaches to those but cannot launch them "
                "yet (it would run unwatched): start it yourself, then attach to it (--pid or --name)"
            )
        described = self._request(
            protocol.OP_LAUNCH,
            self.startup_timeout,
            argv=argv,
            env=env,
            stdout=self.target_stdout,
            stderr=self.target_stderr,
            stdin=None,
            cwd=self.target.cwd,
            kill_at_quit=self.target.kill_on_close,
        )
        self._attached = True
        return described

    def _attach(self) -> Dict[str, Any]:
        pid = self.target.pid
        assert pid is not None
        if not os.path.exists(f"/proc/{pid}"):
            raise NoSuchProcessError(f"no process with pid {pid}")
        try:
            described = self._request(protocol.OP_ATTACH, self.startup_timeout, pid=pid)
        except NotDotnetError:
            raise  # the agent attached and found what it says (it has detached again)
        except TargetError as e:
            # lldb says "lost connection" for most failures: look for the real cause ourselves.
            processes.check_attachable(pid, require_dotnet=False)
            cause = (
                ptrace_access.yama_refusal()
                or f"no cause found in /proc/{pid}: try attaching with lldb -p {pid}"
            )
            raise TargetError(f"{e} ({cause})") from e
        self._attached = True
        return described

    def _stop_lldb(self) -> None:
        proc = self._proc
        if proc is None:
            return
        tree = _debugger_tree(proc.pid) if proc.poll() is None else []
        try:
            if proc.poll() is None:
                try:
                    self._send_line("quit")
                    proc.stdin.close()  # type: ignore[union-attr]
                except (DebuggerDiedError, OSError):
                    pass
                quit_wait = 0.5 if self._hung else QUIT_TIMEOUT
                try:
                    proc.wait(timeout=quit_wait)
                except subprocess.TimeoutExpired:
                    if not self._hung:
                        log.warning(
                            "lldb did not quit within %g s (%s): it is killed", quit_wait, _states(proc.pid)
                        )
                    proc.kill()  # lldb alone: the guardian ends lldb-server without freeing an int3
                    _wait_killed(proc)
            guardian.reap(self._guardian)  # it ends once lldb and lldb-server are gone
            _kill_group(proc.pid)  # lldb and its lldb-server share the session: nothing may stay
        finally:
            # lldb-server has a process group of its own; a stopped or hung one would stay (and keep the
            # target traced): end whatever of lldb's tree is left once lldb is gone.
            for pid in tree[1:]:
                _kill_if_debugger(pid)
            self._tell_watchdog("bye", last=True)
            for fd in (self._reply_r, self._cancel_w):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._reply_r = self._cancel_w = None
            self._proc = None
            guardian.reap(self._guardian)
            self._guardian = None
            if self._python_dir is not None:
                shutil.rmtree(self._python_dir, ignore_errors=True)
                self._python_dir = None


def _wait_killed(proc: "subprocess.Popen[bytes]") -> None:
    """Wait for a killed lldb to be gone, telling why when that takes long; never raise: close goes on."""
    try:
        proc.wait(timeout=KILLED_WARN)
        return
    except subprocess.TimeoutExpired:
        log.warning(
            "lldb (pid %d) is still there %g s after SIGKILL (%s): waiting",
            proc.pid,
            KILLED_WARN,
            _states(proc.pid),
        )
    try:
        proc.wait(timeout=KILLED_WAIT - KILLED_WARN)
    except subprocess.TimeoutExpired:
        log.error(
            "lldb (pid %d) did not end within %g s of SIGKILL (%s); look at /proc/%d/task/*/stack",
            proc.pid,
            KILLED_WAIT,
            _states(proc.pid),
            proc.pid,
        )


def _states(pid: int) -> str:
    """What the threads of ``pid`` are doing: their states and, for the ones not asleep, where in the
    kernel they wait (``D`` at folio_wait_bit is a disk write; ``t`` a ptrace stop)."""
    states: Dict[str, int] = {}
    waits: List[str] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return "gone"
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                raw = f.read().decode("utf-8", "replace")
            state = raw[raw.rindex(")") + 2 :].split()[0]
            states[state] = states.get(state, 0) + 1
            if state not in ("S", "R"):
                with open(f"/proc/{pid}/task/{tid}/wchan", encoding="utf-8", errors="replace") as f:
                    waits.append(f"{tid} {state} in {f.read().strip() or '?'}")
        except (OSError, ValueError, IndexError):
            continue
    summary = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no threads"
    return summary + ("; " + ", ".join(waits[:4]) if waits else "")


def _debugger_tree(root: int) -> List[int]:
    """``root`` and its descendants (lldb, lldb-server), from the parent pids in /proc."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read().decode("utf-8", "replace")
            ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _kill_if_debugger(pid: int) -> None:
    """SIGKILL ``pid`` if it is still an lldb process (a pid is not reused within this fraction of a second,
    but check its name all the same)."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            if not f.read().startswith("lldb"):
                return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
