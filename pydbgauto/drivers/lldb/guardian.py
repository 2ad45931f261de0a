"""The guardian: the attached target survives the debugger's death (docs/linux.md, "What survives what").

When lldb-server (the ptracer) dies without a clean detach (SIGKILL, the OOM killer, a crash, a hang that
pydbgauto ends), the kernel detaches the target but leaves lldb's breakpoint bytes (``int3``) in its code;
the next thread to reach one dies of SIGTRAP (the runtime aborts). Two parts prevent that:

- **The stop guard** (in the agent, inside lldb): while the target is stopped under lldb, a SIGSTOP is kept
  pending for it (``Journal.hold``). If the tracer dies then, the woken threads take that SIGSTOP before
  they run a single instruction: the process enters group-stop instead of re-executing an ``int3``. Before
  lldb resumes or detaches the target, a SIGCONT removes the pending SIGSTOP (``Journal.release``); lldb
  passes that SIGCONT on without stopping (``process handle -p true -s false SIGCONT``).
- **The guardian process** (this file run as a script, Python stdlib only, in its own session so that it
  outlives Python and lldb): it reads a journal from the agent on its stdin (the target's pid, the address and
  original bytes of every breakpoint site lldb holds, whether the target may be held, a clean detach) and
  watches lldb-server through a pidfd. When the tracer is gone without a clean detach, it writes the
  original bytes back through ``/proc/PID/mem`` (only where the byte is still lldb's ``int3``) and sends the
  target SIGCONT, which ends the group-stop. After a clean detach it exits at once and touches nothing.

Journal lines (JSON): ``{"op": "attached", "pid": N, "sites": [[address, "hex"], ...]}``,
``{"op": "sites", "sites": [...]}``,
``{"op": "patches", "patches": [[address, "original hex", "patched hex"], ...]}`` (the in-target filter's
jump, restored only while every thread is stopped), ``{"op": "hold"}``, ``{"op": "release"}``,
``{"op": "detaching"}``, ``{"op": "detached"}``, ``{"op": "link"}`` (carrying lldb's end of its connection to
lldb-server, SCM_RIGHTS: the journal is a socketpair; held, never read, so that lldb's death does not end
lldb-server before the take-over, server_link.py). End of file without ``detached``: the debugger went away.

The guardian reports what it did as one JSON line (to ``PYDBGAUTO_GUARDIAN_REPORT`` when set) and one line
on stderr when it had to act.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from typing import Any, Dict, IO, List, Optional, Sequence, Tuple

GUARDIAN_FD_ENV = "PYDBGAUTO_GUARDIAN_FD"
REPORT_ENV = "PYDBGAUTO_GUARDIAN_REPORT"
INT3 = 0xCC
# After the end of lldb, how long the guardian waits for the lldb-server it ended to go.
TRACER_END_WAIT = 5.0
# After "detaching", how long the guardian waits for "detached" before it checks the target anyway.
DETACH_GRACE = 10.0
# When the target was held: how long the guardian waits for its group-stop to complete.
GROUP_STOP_WAIT = 1.0
RESTOP_EVERY = 0.05  # while waiting for the group-stop: our SIGSTOP again (a SIGCONT may have ended it)
# After restoring, how long the guardian stays to undo a hold an agent sent as its lldb-server died.
LATE_HOLD_WATCH = 10.0


# ----- the agent's side (inside lldb) ------------------------------------------------------------------


class Journal:
    """What the agent tells the guardian, and the stop guard. Every method is a no-op without a guardian
    (no ``PYDBGAUTO_GUARDIAN_FD``) and never raises: the guardian must not be able to break a session."""

    def __init__(self, fd: Optional[int]) -> None:
        self.fd = fd
        self.target: Optional[int] = None  # a pidfd of the target: signals never reach a reused pid
        self.pid: Optional[int] = None
        self.held = False
        self.release_via: Optional[int] = None  # a thread that lldb will not single-step
        if fd is not None:
            try:
                os.set_inheritable(fd, False)  # lldb-server must not hold the journal open
            except OSError:
                self.fd = None

    @classmethod
    def from_environment(cls) -> "Journal":
        value = os.environ.get(GUARDIAN_FD_ENV)
        return cls(int(value) if value and value.isdigit() else None)

    def _write(self, record: Dict[str, Any]) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, (json.dumps(record) + "\n").encode("ascii"))
        except OSError:  # the guardian is gone: go on without it
            self.fd = None

    def _signal(self, signo: int) -> None:
        if self.target is None:
            return
        try:
            signal.pidfd_send_signal(self.target, signo)
        except OSError:
            pass

    def attached(
        self, pid: int, sites: Sequence[Tuple[int, bytes]], threads: Sequence[Tuple[int, bool]]
    ) -> None:
        """The target is attached and stopped; ``sites``: (address, original bytes) lldb has patched;
        ``threads``: see ``hold``."""
        if self.fd is None:
            return
        try:
            self.target = os.pidfd_open(pid)
            self.pid = pid
        except OSError:
            self.target = None
        self._write({"op": "attached", "pid": pid, "sites": _encode(sites)})
        self.hold(threads)

    def link(self, fds: Sequence[int]) -> None:
        """Give the guardian a copy of lldb's end of its connection to lldb-server (server_link.py):
        lldb's death then does not end lldb-server before the guardian has taken over."""
        if self.fd is None or not fds:
            return
        try:
            if not stat.S_ISSOCK(os.fstat(self.fd).st_mode):
                return  # a pipe carries no descriptors
            with socket.socket(fileno=os.dup(self.fd)) as journal:
                socket.send_fds(journal, [(json.dumps({"op": "link"}) + "\n").encode("ascii")], list(fds))
        except OSError:
            pass

    def sites(self, sites: Sequence[Tuple[int, bytes]]) -> None:
        """Every breakpoint site lldb holds now (after breakpoints were created or deleted)."""
        self._write({"op": "sites", "sites": _encode(sites)})

    def patches(self, patches: Sequence[Tuple[int, bytes, bytes]]) -> None:
        """Every code patch the agent holds now: (address, original bytes, patched bytes); the in-target
        filter's jump at the throw funnel (pydbgauto/drivers/lldb/inline_filter.py)."""
        self._write(
            {"op": "patches", "patches": [[int(a), bytes(o).hex(), bytes(p).hex()] for a, o, p in patches]}
        )

    def hold(self, threads: Sequence[Tuple[int, bool]]) -> None:
        """The target has stopped under lldb: keep a SIGSTOP pending for every thread, so that if the
        tracer dies each thread stops as it wakes (none re-executes an int3) until the guardian has
        restored the code. ``threads``: (tid, stopped by a breakpoint or a step)."""
        if self.target is None or self.pid is None:
            return
        self._write({"op": "hold"})  # first: the guardian may then believe a hold that is not there
        for tid, _ in threads:
            _tgkill(self.pid, tid, signal.SIGSTOP)
        quiet = [tid for tid, trapped in threads if not trapped]
        self.release_via = quiet[0] if quiet else None
        self.held = True

    def release(self) -> None:
        """Before lldb resumes or detaches: a SIGCONT drops every pending SIGSTOP. It is sent to a thread
        that is not at a breakpoint: lldb single-steps those over their int3 first, and a signal taken
        in that step would run its handler and bring the thread back to the breakpoint (a second event).
        lldb passes the SIGCONT on to that thread without stopping."""
        if not self.held:
            return
        if self.release_via is not None and self.pid is not None:
            _tgkill(self.pid, self.release_via, signal.SIGCONT)
        else:
            self._signal(signal.SIGCONT)
        self.held = False
        self._write({"op": "release"})

    def detaching(self) -> None:
        self.release()
        self._write({"op": "detaching"})

    def detached(self) -> None:
        self._write({"op": "detached"})
        if self.target is not None:
            os.close(self.target)
            self.target = None


_LIBC: Any = None


def _tgkill(pid: int, tid: int, signo: int) -> None:
    """A signal to one thread of ``pid`` (x86-64 tgkill; both ids must match, so no stray thread)."""
    global _LIBC
    import ctypes

    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    _LIBC.syscall(234, ctypes.c_long(pid), ctypes.c_long(tid), ctypes.c_long(signo))


PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_DETACH = 12, 13, 17
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
RIP_INDEX, EFLAGS_INDEX = 16, 18  # in struct user_regs_struct (x86-64)
TRAP_FLAG = 0x100


def _sanitize_thread(tid: int, restored: Sequence[int]) -> Dict[str, bool]:
    """Seize one group-stopped thread and let it go again, still group-stopped. Our own detach ends any
    single-step lldb-server left armed (the kernel does not when a tracer dies: the thread would trap
    after one instruction, untraced, and the runtime abort); and a pc just past a site whose int3 we
    restored (the thread trapped there and lldb-server never backed it up) is put back on the site.
    Returns what was found and done."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    regs = (ctypes.c_ulonglong * 27)()
    found = {"seized": False, "single_step": False, "pc_fixed": False}
    if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
        return found
    found["seized"] = True
    try:
        if libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
            return found
        os.waitpid(tid, 0x40000000)  # __WALL
        if libc.ptrace(PTRACE_GETREGS, tid, None, ctypes.byref(regs)) != 0:
            return found
        found["single_step"] = bool(regs[EFLAGS_INDEX] & TRAP_FLAG)
        if regs[RIP_INDEX] - 1 in restored:
            regs[RIP_INDEX] -= 1
            found["pc_fixed"] = libc.ptrace(PTRACE_SETREGS, tid, None, ctypes.byref(regs)) == 0
        return found
    except OSError:
        return found
    finally:
        libc.ptrace(PTRACE_DETACH, tid, None, None)  # ptrace_disable: the single-step ends here


def _encode(sites: Sequence[Tuple[int, bytes]]) -> List[List[Any]]:
    return [[int(address), bytes(original).hex()] for address, original in sites]


# ----- the driver's side (Python) ----------------------------------------------------------------------


def start(report: Optional[str] = None) -> Tuple[int, "subprocess.Popen[bytes]"]:
    """Start a guardian; returns (the journal's write end, to pass to lldb, then close; the process).

    The guardian gets its own session (a terminal's Ctrl-C, a dying Python or lldb do not end it) and
    reads the journal on stdin; the caller keeps no copy of the write end once lldb has it.
    """
    # A socket, not a pipe: the agent sends lldb's connection to lldb-server over it (Journal.link).
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    read_end, write_end = reader.detach(), writer.detach()
    env = dict(os.environ, PYDBGAUTO_OWNER_PID=str(os.getpid()))  # as lldb's: tests find their own
    if report:
        env[REPORT_ENV] = report
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
            env=env,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return write_end, proc


def reap(proc: "Optional[subprocess.Popen[bytes]]", timeout: float = 5.0) -> None:
    """Collect an ended guardian (it ends by itself once lldb is gone); never kill it: it may be working."""
    if proc is None:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


# ----- the guardian process ----------------------------------------------------------------------------


def _tracer_of(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0


def _pidfd(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _ended(fd: Optional[int]) -> bool:
    if fd is None:
        return True
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _threads(pid: int) -> Dict[int, Tuple[str, Optional[int]]]:
    """Each thread's state letter and, when it is stopped outside a system call, its pc."""
    found: Dict[int, Tuple[str, Optional[int]]] = {}
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            state = raw[raw.rindex(")") + 2]
            pc = None
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
            if fields and fields[0] == "-1" and len(fields) == 3:
                pc = int(fields[2], 16)
        except (OSError, ValueError):
            continue
        found[tid] = (state, pc)
    return found


class Guardian:
    def __init__(self, journal: IO[bytes], report: Optional[str]) -> None:
        self.journal = journal
        self.report_path = report
        self.pid: Optional[int] = None
        self.target_fd: Optional[int] = None
        self.tracer: Optional[int] = None
        self.tracer_fd: Optional[int] = None
        self.sites: Dict[int, bytes] = {}
        self.patches: Dict[int, Tuple[bytes, bytes]] = {}  # address -> (original, patched)
        self.held = False
        self.detaching = False
        self.eof = False
        self.pending = b""
        self.links: List[int] = []  # lldb's connection to lldb-server, held (Journal.link)
        self._socket: Optional[socket.socket] = None
        if stat.S_ISSOCK(os.fstat(journal.fileno()).st_mode):
            self._socket = socket.socket(fileno=os.dup(journal.fileno()))

    def _feed(self, data: bytes) -> bool:
        """Take journal lines; True on a clean detach."""
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            op = record.get("op")
            if op == "attached":
                self.pid = int(record["pid"])
                self.target_fd = _pidfd(self.pid)
                self.tracer = _tracer_of(self.pid) or None
                self.tracer_fd = _pidfd(self.tracer) if self.tracer else None
                self._set_sites(record.get("sites") or [])
            elif op == "sites":
                self._set_sites(record.get("sites") or [])
            elif op == "patches":
                self.patches = {
                    int(a): (bytes.fromhex(o), bytes.fromhex(p)) for a, o, p in record.get("patches") or []
                }
            elif op == "hold":
                self.held = True
            elif op == "release":
                self.held = False
            elif op == "detaching":
                self.detaching = True
            elif op == "detached":
                return True
        return False

    def _receive(self) -> bytes:
        """The journal's next bytes, keeping any descriptor sent with them (a plain read would drop it)."""
        if self._socket is None:  # a pipe: no descriptors come on it
            return os.read(self.journal.fileno(), 1 << 16)
        data, fds, _, _ = socket.recv_fds(self._socket, 1 << 16, 4)
        self.links.extend(fds)
        return data

    def _drain(self) -> bool:
        """Take every journal line already written; True on a clean detach among them."""
        while not self.eof and _ended(self.journal.fileno()):
            data = self._receive()
            if not data:
                self.eof = True
            elif self._feed(data):
                return True
        return False

    def _set_sites(self, sites: List[List[Any]]) -> None:
        self.sites = {int(address): bytes.fromhex(original) for address, original in sites}

    def run(self) -> int:
        status = self._watch()
        if status is None:
            return 0
        self._late_holds()
        return status

    def _watch(self) -> Optional[int]:
        """Until a clean detach or the target's end (None) or the debugger's death (recovered: status)."""
        tracer_gone_at: Optional[float] = None
        while True:
            now = time.monotonic()
            timeout: Optional[float] = None
            if tracer_gone_at is not None:
                timeout = max(0.0, DETACH_GRACE - (now - tracer_gone_at))
            fds = [] if self.eof else [self.journal.fileno()]
            if tracer_gone_at is None and self.tracer_fd is not None:
                fds.append(self.tracer_fd)
            if self.target_fd is not None:
                fds.append(self.target_fd)
            ready, _, _ = select.select(fds, [], [], timeout)
            if self.journal.fileno() in ready:
                data = self._receive()
                if not data:
                    self.eof = True
                elif self._feed(data):
                    return None  # a clean detach: nothing to do
            if self.pid is None:
                if self.eof:
                    return None  # lldb ended before it attached anything
                continue
            if _ended(self.target_fd):
                return None  # the target is gone: nothing left to protect
            if tracer_gone_at is None and _ended(self.tracer_fd):
                tracer_gone_at = time.monotonic()
                # The agent writes "detaching" before its detach ends lldb-server, but this loop may have
                # read the journal just before it came: read what is there before deciding (a clean
                # detach under load was taken for lldb-server's death about once in 50 sessions).
                if self._drain():
                    return None
            if tracer_gone_at is not None:
                if self.detaching and not self.eof and time.monotonic() - tracer_gone_at < DETACH_GRACE:
                    continue  # a clean detach ends lldb-server before the agent says "detached"
                return self.recover("debugger-ended" if self.eof else "tracer-ended")
            if self.eof:
                # lldb is gone (whatever it managed to do is done) but its lldb-server still traces the
                # target, armed, for as long as it takes to notice (50-150 ms): take over, then restore.
                if self.tracer_fd is not None and _tracer_of(self.pid) == self.tracer:
                    self._end_tracer()
                return self.recover("debugger-ended")

    def _end_tracer(self) -> None:
        """End a tracer whose lldb is gone without letting any thread run into an int3: freeze it, stop
        every thread under it, give each a pending SIGSTOP (the agent's hold), then kill it. Threads it
        stopped at a breakpoint without backing their pc up are fixed by ``recover``."""
        assert self.pid is not None and self.tracer_fd is not None
        try:
            signal.pidfd_send_signal(self.tracer_fd, signal.SIGSTOP)  # it can resume nothing now
            tids = list(_threads(self.pid))
            for tid in tids:  # a running thread takes it as a stop lldb-server will never see
                _tgkill(self.pid, tid, signal.SIGSTOP)
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                if all(state in "tT" for state, _ in _threads(self.pid).values()):
                    break
                time.sleep(0.001)
            for tid in _threads(self.pid):  # now pending: taken as each thread wakes
                _tgkill(self.pid, tid, signal.SIGSTOP)
            self.held = True
            signal.pidfd_send_signal(self.tracer_fd, signal.SIGKILL)
        except OSError:
            pass
        select.select([self.tracer_fd], [], [], TRACER_END_WAIT)

    def _late_holds(self) -> None:
        """An agent whose lldb-server died during a resume may still send its hold (a SIGSTOP) after
        the recovery; it writes "hold" first, so: stay until lldb is gone and continue the target again."""
        deadline = time.monotonic() + LATE_HOLD_WATCH
        while not self.eof and time.monotonic() < deadline:
            ready, _, _ = select.select([self.journal.fileno()], [], [], deadline - time.monotonic())
            if not ready:
                break
            data = self._receive()
            if not data:
                self.eof = True
            elif b'"hold"' in data:
                time.sleep(0.01)  # the SIGSTOP follows the journal line
                self._continue()
        if self.pid is not None and any(state == "T" for state, _ in _threads(self.pid).values()):
            if _tracer_of(self.pid) == 0:
                self._continue()

    def _stop_again(self, report: Dict[str, Any]) -> None:
        report["stopped_again"] = report.get("stopped_again", 0) + 1
        try:
            if self.target_fd is not None:
                signal.pidfd_send_signal(self.target_fd, signal.SIGSTOP)
        except OSError:
            pass

    def _continue(self) -> None:
        try:
            if self.target_fd is not None:
                signal.pidfd_send_signal(self.target_fd, signal.SIGCONT)
        except OSError:
            pass

    def recover(self, cause: str) -> int:
        detected = time.monotonic()
        assert self.pid is not None
        pid = self.pid
        report: Dict[str, Any] = {
            "pid": pid,
            "cause": cause,
            "detected_at": detected,
            "held": self.held,
            "link": bool(self.links),
        }
        # The kernel detaches tracees before it reports the tracer's end; wait (bounded) to be sure.
        deadline = detected + 2.0
        tracer = _tracer_of(pid)
        while tracer not in (0, None) and tracer == self.tracer and time.monotonic() < deadline:
            time.sleep(0.001)
            tracer = _tracer_of(pid)
        if tracer:
            report.update(action="none", reason=f"the target is traced by pid {tracer}")
            return self._report(report, 1)
        restored: List[str] = []
        unexpected: List[str] = []
        try:
            with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
                for address, original in sorted(self.sites.items()):
                    current = os.pread(mem.fileno(), len(original), address)
                    if current == original:
                        continue  # lldb restored it (a detach on its way out)
                    if current[:1] == bytes([INT3]) and current[1:] == original[1:]:
                        os.pwrite(mem.fileno(), original, address)
                        restored.append(f"{address:#x}")
                    else:
                        unexpected.append(f"{address:#x}={current.hex()}")
        except OSError as e:
            report["error"] = f"/proc/{pid}/mem: {e}"
        report["restored_at"] = time.monotonic()
        report["restored"] = restored
        report["unexpected"] = unexpected
        threads = _threads(pid)
        # A multi-byte patch is never written under running threads (a torn jump). Stopped by our own
        # SIGSTOP even when held: a detach lldb did by itself may have dropped the hold's SIGSTOP.
        stop_for_patches = bool(self.patches)
        if stop_for_patches:
            try:
                if self.target_fd is not None:
                    signal.pidfd_send_signal(self.target_fd, signal.SIGSTOP)
            except OSError:
                stop_for_patches = False
        if (
            self.held or stop_for_patches
        ):  # let the group-stop complete (bounded) before looking at the threads
            deadline = time.monotonic() + GROUP_STOP_WAIT
            again_at = time.monotonic() + RESTOP_EVERY
            while any(state not in "Tt" for state, _ in threads.values()) and time.monotonic() < deadline:
                time.sleep(0.001)
                if stop_for_patches and time.monotonic() >= again_at:
                    # A SIGCONT ended the stop: the agent's release, sent as lldb resumed the target
                    # before it learnt that lldb-server was gone (seen: no thread stopped in 1 s).
                    self._stop_again(report)
                    again_at = time.monotonic() + RESTOP_EVERY
                threads = _threads(pid)
            report["group_stop_at"] = time.monotonic()
        if self.patches:
            report["patches"] = self._restore_patches(pid, threads)
        report["stopped_threads"] = sum(1 for state, _ in threads.values() if state in "Tt")
        report["threads"] = len(threads)
        report["threads_at_sites"] = {
            str(tid): f"{pc:#x}" for tid, (_, pc) in threads.items() if pc is not None and pc in self.sites
        }
        report["threads_after_sites"] = {
            str(tid): f"{pc:#x}"
            for tid, (_, pc) in threads.items()
            if pc is not None and pc - 1 in self.sites
        }
        # Every group-stopped thread is seized and let go: that ends a single-step lldb-server left armed
        # (its step over a breakpoint), and puts a pc left just past a restored int3 back on the site.
        sanitized = {"seized": [], "single_step": [], "pc_fixed": []}  # type: Dict[str, List[str]]
        if report["stopped_threads"]:
            restored_sites = [int(a, 16) for a in restored]
            for tid in [tid for tid, (state, _) in threads.items() if state == "T"]:
                for key, value in _sanitize_thread(tid, restored_sites).items():
                    if value:
                        sanitized[key].append(str(tid))
        report.update(sanitized)
        if self.held or stop_for_patches or report["stopped_threads"]:
            # The pending SIGSTOP has stopped (or will stop) the group; SIGCONT ends the stop, or drops
            # a SIGSTOP not yet taken, either way.
            try:
                if self.target_fd is not None:
                    signal.pidfd_send_signal(self.target_fd, signal.SIGCONT)
                report["continued"] = True
            except OSError as e:
                report["continued"] = f"failed: {e}"
        report["done_at"] = time.monotonic()
        acted = bool(restored or report.get("continued") or (report.get("patches") or {}).get("restored"))
        report["action"] = "restored" if acted else "none"
        return self._report(report, 0)

    def _restore_patches(self, pid: int, threads: Dict[int, Tuple[str, Optional[int]]]) -> Dict[str, Any]:
        """Put the original bytes back where a patch is still in place, only while every thread is
        stopped. A patch left in place is safe (the stub it jumps to is self-contained and stays mapped,
        its trap restored to a nop with the breakpoint sites): the code then differs from its file."""
        done: Dict[str, Any] = {"restored": [], "left": [], "unexpected": []}
        if any(state not in "Tt" for state, _ in threads.values()):
            done["left"] = [f"{a:#x}" for a in sorted(self.patches)]
            done["reason"] = "the target did not stop"
            return done
        try:
            with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
                for address, (original, patched) in sorted(self.patches.items()):
                    current = os.pread(mem.fileno(), len(original), address)
                    if current == patched:
                        os.pwrite(mem.fileno(), original, address)
                        done["restored"].append(f"{address:#x}")
                    elif current != original:
                        done["unexpected"].append(f"{address:#x}={current.hex()}")
        except OSError as e:
            done["error"] = f"/proc/{pid}/mem: {e}"
        return done

    def _report(self, report: Dict[str, Any], status: int) -> int:
        text = json.dumps(report)
        if self.report_path:
            try:
                fd = os.open(self.report_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "a") as f:
                    f.write(text + "\n")
            except OSError:
                pass
        if report.get("action") != "none" or status:
            try:
                sys.stderr.write(
                    f"pydbgauto guardian: the debugger of pid {report['pid']} ended without detaching "
                    f"({report['cause']}); restored {len(report.get('restored') or [])} breakpoint byte(s)"
                    f"{', continued the target' if report.get('continued') is True else ''}\n"
                )
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        return status


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return Guardian(sys.stdin.buffer, os.environ.get(REPORT_ENV)).run()


if __name__ == "__main__":
    sys.exit(main())
