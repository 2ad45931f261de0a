"""pydbgauto's agent inside lldb: the lldb driver's debugger mechanics, run in lldb's own Python.

lldb imports this file (``command script import``); the driver then sends one ``pda`` command per
request on lldb's stdin and reads the reply from the file descriptor named by ``PYDBGAUTO_REPLY_FD``,
framed by ``pydbgauto.drivers.framing``'s markers, never from lldb's stdout, where SOS's callbacks
print at will. The wire (operations, reply keys, event and error kinds) is protocol.py; reading a
request and framing its reply is dispatch.py.

The agent knows debugger mechanics (breakpoints, registers, memory). It reads SOS output only through
pydbgauto's parsers (``pydbgauto.sos``) and only where a stop needs it: to validate a stop's exception
object (``pe``), and for the in-agent filter, the one exception to "drivers do not interpret SOS text":
the type chain (``dumpmt``, once per type) and, for a predicate that needs more than the type, ``pe``
and ``clrstack`` at each first-chance stop, so a throw that does not match is resumed here without a
round trip to Python (docs/linux.md). ``exec`` hands a command's text back as it is.

Why each mechanism is what it is: docs/linux.md.
"""

from __future__ import annotations

import importlib
import os
import re
import struct
import sys
import threading
import time
import types
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

import lldb  # type: ignore[import-not-found]

# The agent runs inside lldb's own Python: make the pydbgauto package importable for the core writer
# and the SOS parsers (one parser for the whole project), without running the __init__ of pydbgauto and
# pydbgauto.drivers: they load the public API and the driver contract (sessions, analysis, models), ~0.1 s of
# every start that the agent does not need before its first stop.
_PACKAGE_PARENT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
if _PACKAGE_PARENT not in sys.path:
    sys.path.insert(0, _PACKAGE_PARENT)
for _name in ("pydbgauto", "pydbgauto.drivers"):
    if _name not in sys.modules:
        _package = types.ModuleType(_name)
        _package.__path__ = [os.path.join(_PACKAGE_PARENT, *_name.split("."))]
        sys.modules[_name] = _package

from pydbgauto import processes  # noqa: E402
from pydbgauto.drivers.lldb import asking, guardian, lost_forks, protocol, qcalls, server_link  # noqa: E402
from pydbgauto.drivers.lldb.continue_watch import ContinueWatch  # noqa: E402
from pydbgauto.drivers.lldb.rehits import Rehits  # noqa: E402
from pydbgauto.drivers.lldb.trap_signals import TrapSignals  # noqa: E402
from pydbgauto.drivers.lldb.dispatch import AgentError, dispatch  # noqa: E402
from pydbgauto.drivers.lldb.exception_fields import ExceptionFields  # noqa: E402
from pydbgauto.drivers.lldb.filter_ops import AGENT_CAN_FETCH, SITE_READ_OPS  # noqa: E402
from pydbgauto.drivers.lldb.filter_ops import TYPE_ONLY_OPS, named_types, spec_ops  # noqa: E402
from pydbgauto.drivers.lldb.lldb_settings import START_UP_SETTINGS  # noqa: E402
from pydbgauto.drivers.lldb.filter_stub import SIGURG, type_verdict  # noqa: E402
from pydbgauto.drivers.lldb.inline_filter import FilterUnavailable, InlineFilter  # noqa: E402
from pydbgauto.drivers.lldb.message_prefilter import Condition, condition  # noqa: E402
from pydbgauto.drivers.lldb.verdict_server import VerdictServer  # noqa: E402
from pydbgauto.drivers.lldb import exception_layout, scan_cache, stop_question, throw_sites  # noqa: E402
from pydbgauto.drivers.lldb import exception_counter  # noqa: E402
from pydbgauto.drivers.lldb.runtime_module import is_single_file, runtime_module  # noqa: E402

if TYPE_CHECKING:
    from pydbgauto import coredump, predicates
    from pydbgauto.drivers.lldb.legacy_faults import LegacyFaults
    from pydbgauto.drivers.lldb.stop_cache import StopCache
    from pydbgauto.models import ManagedException

# First needed at the first stop: imported on a thread while lldb attaches or launches, which releases the
# GIL (started then, not at import, so it does not compete with the agent's own import; a stop that needs
# one of them first waits for its import to finish, as any import does).
LATER_MODULES = (
    "pydbgauto.models",
    "pydbgauto.sos.pe",
    "pydbgauto.sos.clrstack",
    "pydbgauto.sos.objects",
    "pydbgauto.sos.threads",
    "pydbgauto.predicates",
    "pydbgauto.coredump",
    "pydbgauto.drivers.lldb.stack_reader",
    "pydbgauto.drivers.lldb.stop_cache",
)


_later_imports: List[threading.Thread] = []


def _import_later_modules() -> None:
    if _later_imports:
        return

    def run() -> None:
        for name in LATER_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the op that needs it imports it again and reports the error
                pass

    _later_imports.append(threading.Thread(target=run, name="pydbgauto-imports", daemon=True))
    _later_imports[0].start()


SIGABRT = 6
# libcoreclr's QCall that DispatchEx calls for each frame of a first pass; flags bit 0 marks the first
# frame of a throw or rethrow, by when the runtime has made the object the thread's current exception.
APPEND_FRAME_QCALL = "AppendExceptionStackFrame"
RH_EH_FIRST_FRAME = 1
RH_EH_FIRST_RETHROW_FRAME = 2
# Signals the runtime raises and handles itself; they must reach it without stopping the target.
# SIGCONT: the stop guard's release (pydbgauto/drivers/lldb/guardian.py).
PASS_SIGNALS = (
    "SIGSEGV SIGFPE SIGBUS SIGILL SIGUSR1 SIGUSR2 SIGPIPE SIGCHLD SIGINT SIGTERM SIGHUP SIGWINCH SIGCONT"
)
# .NET 8: the Thread object is scanned this far for its last-thrown-object handle; the read is checked
# against a bare pe at this many stops before it is trusted alone.
THREAD_SCAN_BYTES = 0x400
LTO_CHECKS = 3
CLR_EXCEPTION_CODE = 0xE0434352  # what a CLR exception is called in EXCEPTION_RECORDs


class Agent:
    def __init__(self, debugger: "lldb.SBDebugger") -> None:
        self.debugger = debugger
        self.debugger.SetAsync(False)
        self.ci = debugger.GetCommandInterpreter()
        self.reply = os.fdopen(int(os.environ["PYDBGAUTO_REPLY_FD"]), "w", buffering=1, encoding="utf-8")
        cancel_fd = os.environ.get("PYDBGAUTO_CANCEL_FD")
        self.cancel_fd = int(cancel_fd) if cancel_fd else None
        self.target: Optional[lldb.SBTarget] = None
        self.process: Optional[lldb.SBProcess] = None
        self.launched = False
        self.kill_at_quit = False  # a launched target the session kills at its end (kill_on_close)
        self.forks_seen_at = -1  # the stop id whose fork stops lost_forks.py looked at
        self.mechanism: Optional[str] = None
        self.append_bp: Optional[int] = None
        self.rethrow_bp: Optional[int] = None
        self.exit_bp: Optional[int] = None  # libc's exit(): the runtime's count read as the process ends
        self.count_at_exit: Optional[int] = None
        self.faults: Optional[LegacyFaults] = None
        # The in-target type filter on the throw funnel (inline_filter.py, docs/linux-fast-filter.md).
        self.inline: Optional[InlineFilter] = None
        self.verdicts: Optional[VerdictServer] = None  # the stub's question's answering thread (asking.py)
        # pydbgauto's Python answers instead (a callable predicate): its socket's name, and whether the
        # stub asks it now (asking.py)
        self.ask_python: Optional[str] = None
        self.asking_python = False
        self.kept_pages: Set[int] = set()  # stub pages left mapped for a thread in a question (remove)
        self.inline_note: Optional[str] = None  # why there is none
        self.urg_suppressed = False  # the trap's SIGURG dropped at the resume (_pass_urg)
        self.funnel: Optional["lldb.SBAddress"] = None  # .NET 8: RaiseTheExceptionInternalOnly
        # .NET 8: thread -> what the funnel's trap learnt of the throw to report at its __cxa_rethrow
        self.funnel_pending: Dict[int, Dict[str, Any]] = {}
        self.filter_spec: Optional[Dict[str, Any]] = None
        # .NET 8: the predicate's necessary condition on message/HResult (message_prefilter.py), written
        # into the stub once the field reader is trusted; given up when most throws hold it anyway
        self.prefilter: Condition = None
        self.prefilter_note: Optional[str] = None
        self.thread_objects: Dict[int, int] = {}  # OS thread id -> the runtime's Thread object
        self.lto_offset: Optional[int] = None  # the last-thrown-object handle's slot in a Thread object
        self.lto_checks = 0
        self.journaled_breakpoints = 0  # breakpoints the guardian's journal last heard of
        self.tid_offset: Optional[int] = None  # where a Thread object holds its OS thread id
        self.fault_arming: Optional[Dict[str, Any]] = None
        self.startup_bp: Optional[int] = None
        self.pending: List[Dict[str, Any]] = []
        self.last_event: Optional[Dict[str, Any]] = None  # the last event reported, for the dump
        self.maps_at_start: set = set()  # anonymous executable regions before pydbgauto ran anything
        # MethodTable -> (type name, base types...), filled by dumpmt once per type
        self.type_chains: Dict[int, Tuple[str, ...]] = {}
        self.filter: Optional[predicates.Predicate] = None
        self.filter_type_only = False
        # message/HResult predicates: read from the object (exception_fields.py)
        self.filter_field_read = False
        # thrown_in with field predicates only: its throw site named by the chain of return addresses an
        # earlier stop showed it with, at a stop (both runtimes) and in .NET 8's question (throw_sites.py)
        self.filter_site_read = False
        self.throw_sites = throw_sites.ThrowSites()
        self.runtime_code: Optional[Tuple[int, int]] = None  # libcoreclr's mapped range (runtime_range)
        self.counter_address: Optional[int] = None  # the runtime's exception counter (0: none found)
        self.fields = ExceptionFields()
        # no filter here (a Python callable): send each first-chance event with its type, message and
        # HResult read from the object, so Python may decide it without SOS (watching/thin.py)
        self.report_fields = False
        self.filtered: List[Dict[str, Any]] = []  # first-chance stops the filter let pass, for the log
        self._stop_cache: Optional["StopCache"] = None
        self.runtime: Dict[str, Any] = {}
        self.continue_watch = ContinueWatch(self.cancel_fd)
        self.rehits = Rehits()
        self.trap_signals = TrapSignals()
        self.journal = guardian.Journal.from_environment()  # the guardian: survive lldb's death
        self.stats: Dict[str, Any] = {
            "stops": 0,
            "frame_stops": 0,  # AppendExceptionStackFrame for a later frame of a throw already reported
            "filter_traps": 0,  # stops at the in-target filter's trap (a type not known not to match)
            "field_reads": 0,  # message/HResult read from the object for the filter (no SOS pe)
            "asked_at_stops": 0,  # a callable's stops asked to pydbgauto's Python (stop_question.py)
            "let_go_at_stops": 0,
            "throw_site_known": 0,  # thrown_in decided at a stop from its chain, no clrstack
            "other_thread_stops": 0,  # .NET 8: __cxa_rethrow of a thread with no matching throw pending
            "prefilter_traps": 0,  # .NET 8: trap stops while the message/HResult prefilter was on
            "passed_sigurg": 0,  # SIGURGs of the target's own (not the stub's trap): passed on
            "lost_forks": 0,  # fork/vfork stops lldb left undone, met by an interrupt (lost_forks.py)
            "interrupts": 0,  # runs the agent interrupted (a time limit, a cancel byte): the target stopped
            "flushes": 0,  # runs ended at a resumable stop to send the filtered ones (flush_after)
            "asked_passed": 0,  # throws the stub asked about and the answering thread let go (no stop)
            "question_run_outs": 0,  # short runs before removing the stub, for threads in a question
            "run_seconds": 0.0,
            "sos_seconds": 0.0,
            "sos_commands": 0,  # every command the agent ran (lldb's and SOS's)
            "commands": {},  # how many of each, by its first word
            "thread_slots_kept": False,  # .NET 8: the Thread object's slots came from an earlier session
        }

    # ----- plumbing -------------------------------------------------------------------------------------

    def handle(self, line: str) -> None:
        self.reply.write(dispatch(self, line, _PROFILE))
        self.reply.flush()

    def hc(self, command: str) -> str:
        started = time.monotonic()
        _trace(f"hc {command}")
        ro = lldb.SBCommandReturnObject()
        self.ci.HandleCommand(command, ro)
        self.stats["sos_seconds"] += time.monotonic() - started
        if _TRACE:  # what each command cost, where a stop's time goes
            _trace(f"hc-done {time.monotonic() - started:.4f} {command}")
        self.stats["sos_commands"] += 1
        name = command.split(" ", 1)[0]
        self.stats["commands"][name] = self.stats["commands"].get(name, 0) + 1
        return (ro.GetOutput() or "") + (ro.GetError() or "")

    def _require_process(self) -> "lldb.SBProcess":
        if self.process is None or not self.process.IsValid():
            raise AgentError(protocol.ERR_NO_PROCESS, "no process is being debugged")
        state = self.process.GetState()
        if state in (lldb.eStateExited, lldb.eStateDetached, lldb.eStateInvalid):
            raise AgentError(
                protocol.ERR_EXITED, f"the target is gone (state {lldb.SBDebugger.StateAsCString(state)})"
            )
        return self.process

    def _read(self, address: int, size: int) -> bytes:
        error = lldb.SBError()
        data = self._require_process().ReadMemory(address, size, error)
        if not error.Success() or data is None:
            raise AgentError(
                protocol.ERR_MEMORY, f"cannot read {size} bytes at {address:#x}: {error.GetCString()}"
            )
        return bytes(data)

    def _u64(self, address: int) -> int:
        return int(struct.unpack("<Q", self._read(address, 8))[0])

    def target_syscall(self, packet: str) -> str:
        """A gdb-remote packet by which lldb-server runs a system call in the stopped target (``_M``
        mmap, ``_m`` munmap); its reply. lldb-server single-steps a syscall on its current thread, and a
        signal pending there (the stop guard's SIGSTOP, its release's SIGCONT) is taken instead: the call
        does not run and the reply still says OK (measured: a page left mapped). So the guard is
        released for the call (SIGCONT drops every pending SIGSTOP), the call runs on a thread other
        than the one that got the SIGCONT, and the guard is held again."""
        process = self._require_process()
        held = self.journal.held
        if held:
            self.journal.release()
        try:
            quiet = [t.GetThreadID() for t in process if t.GetThreadID() != self.journal.release_via]
            if quiet:
                _raw_packet(self, f"Hg{quiet[0]:x}")
            return _raw_packet(self, packet)
        finally:
            selected = process.GetSelectedThread()
            if selected.IsValid():  # lldb's own idea of the current thread (its register access names it)
                _raw_packet(self, f"Hg{selected.GetThreadID():x}")
            if held:
                self.journal.hold(_thread_stops(process))

    # ----- set-up ---------------------------------------------------------------------------------------

    def op_init(self, sos_plugin: str) -> Dict[str, Any]:
        out = self.hc(f'plugin load "{sos_plugin}"')
        if "error" in out.lower():
            raise AgentError(protocol.ERR_SOS, f"could not load the SOS plugin {sos_plugin}: {out.strip()}")
        self.hc("sethostruntime -none")
        self.hc("settings set interpreter.prompt-on-quit false")
        self.hc("settings set auto-confirm true")
        for setting in START_UP_SETTINGS:
            self.hc(f"settings set {setting}")
        return {"lldb": lldb.SBDebugger.GetVersionString().splitlines()[0]}

    def _signals(self) -> None:
        self.hc(f"process handle -p true -s false -n false {PASS_SIGNALS}")
        self.hc("process handle -p true -s true -n true SIGABRT")
        # The stub's trap stops here; one that is not the trap's is passed on (_pass_urg)
        if self.process is None or not self.process.IsValid():
            return
        signals = self.process.GetUnixSignals()
        signals.SetShouldStop(SIGURG, True)
        signals.SetShouldNotify(SIGURG, False)
        signals.SetShouldSuppress(SIGURG, False)
        self.urg_suppressed = False

    def op_launch(
        self,
        argv: List[str],
        env: Dict[str, str],
        stdout: str,
        stderr: str,
        stdin: Optional[str],
        cwd: Optional[str],
        kill_at_quit: bool = False,
    ) -> Dict[str, Any]:
        _import_later_modules()
        error = lldb.SBError()
        self.target = self.debugger.CreateTarget(argv[0], None, None, True, error)
        if not error.Success() or not self.target.IsValid():
            raise AgentError(protocol.ERR_LAUNCH, f"lldb cannot load {argv[0]}: {error.GetCString()}")
        # Stop once the runtime is up (CoreLib loaded, DAC usable) and before Main runs.
        bp = self.target.BreakpointCreateByName("coreclr_execute_assembly")
        self.startup_bp = bp.GetID()
        info = lldb.SBLaunchInfo(argv[1:])
        info.SetEnvironmentEntries([f"{k}={v}" for k, v in env.items()], True)
        if cwd:
            info.SetWorkingDirectory(cwd)
        info.AddOpenFileAction(0, stdin or "/dev/null", True, False)
        info.AddOpenFileAction(1, stdout, False, True)
        info.AddOpenFileAction(2, stderr, False, True)
        self.process = self.target.Launch(info, error)
        if not error.Success() or not self.process.IsValid():
            raise AgentError(protocol.ERR_LAUNCH, f"lldb could not launch {argv[0]}: {error.GetCString()}")
        self.launched = True
        self.kill_at_quit = True  # a launch refused below leaves no program running unwatched
        self._signals()
        state = self.process.GetState()
        if state == lldb.eStateExited:
            raise AgentError(
                protocol.ERR_EXITED,
                f"the target exited with status {self.process.GetExitStatus()} before the runtime started",
            )
        if not self._at_breakpoint(self.startup_bp):
            raise AgentError(
                protocol.ERR_NOT_DOTNET,
                f"{argv[0]} stopped before the .NET runtime started ({self._stop_text()}); is it a .NET app?",
            )
        self.target.BreakpointDelete(self.startup_bp)
        self.kill_at_quit = kill_at_quit
        return self._describe()

    def op_attach(self, pid: int) -> Dict[str, Any]:
        _import_later_modules()
        out = self.hc(f"process attach --pid {int(pid)}")
        if "lost connection" in out:  # lldb-server went away during the attach: try once more
            time.sleep(0.5)
            out = self.hc(f"process attach --pid {int(pid)}")
        self.target = self.debugger.GetSelectedTarget()
        self.process = self.target.GetProcess() if self.target.IsValid() else None
        if (
            self.process is None
            or not self.process.IsValid()
            or self.process.GetState() != lldb.eStateStopped
        ):
            raise AgentError(protocol.ERR_ATTACH, f"cannot attach to pid {pid}: {out.strip()}")
        self._signals()
        try:
            if self._runtime_module() is None:
                raise AgentError(
                    protocol.ERR_NOT_DOTNET,
                    f"pid {pid} has no libcoreclr.so loaded (nor is it a single-file .NET app): it does not "
                    "run .NET (Core)",
                )
            described = self._describe()
        except AgentError:
            self.process.Detach()  # refused: the target runs on as before, untraced
            raise
        self.journal.attached(
            self.process.GetProcessID(), self._breakpoint_bytes(), _thread_stops(self.process)
        )
        if self.journal.fd is not None:  # lldb's death must not end lldb-server first (server_link.py)
            self.journal.link(server_link.connections_to(processes.tracer_of(self.process.GetProcessID())))
        return described

    def _runtime_module(self) -> Optional["lldb.SBModule"]:
        """libcoreclr.so, or a single-file app's executable (runtime_module.py)."""
        return runtime_module(self.target) if self.target is not None else None

    def _find_module(self, name: str) -> Optional["lldb.SBModule"]:
        assert self.target is not None
        for module in self.target.module_iter():
            if module.GetFileSpec().GetFilename() == name:
                return module
        return None

    def _describe(self) -> Dict[str, Any]:
        process = self._require_process()
        self.maps_at_start = _anonymous_code(process.GetProcessID())
        coreclr = self._runtime_module()
        if coreclr is not None and is_single_file(coreclr):
            self.runtime = self._single_file_runtime(coreclr)
        else:
            directory = coreclr.GetFileSpec().GetDirectory() if coreclr else None
            self.runtime = {"directory": directory, "version": _runtime_version(directory)}
        return {"pid": process.GetProcessID(), "runtime": self.runtime, "threads": process.GetNumThreads()}

    def _single_file_runtime(self, executable: "lldb.SBModule") -> Dict[str, Any]:
        """A single-file app: SOS is pointed at the DAC of its runtime's build (single_file.py), which
        the app does not carry; none found on this machine is an error that says what to install."""
        from pydbgauto import single_file

        path = executable.GetFileSpec().fullpath
        info = single_file.runtime_info(path)
        dac = single_file.find_dac_dir(info) if info is not None else None
        if info is None or dac is None:
            version = info.file_version if info is not None else None
            raise AgentError(
                protocol.ERR_NOT_DOTNET,
                f"{path} is a single-file .NET app (runtime file version {version or 'unknown'}); SOS needs "
                f"that runtime's {single_file.DAC_NAME}, of the same build, and none of "
                f"{', '.join(single_file.dac_candidates()) or 'no folder'} has it: install that .NET "
                "runtime (or restore its runtime pack, Microsoft.NETCore.App.Runtime.linux-x64), or set "
                "PYDBGAUTO_DAC_DIR to a folder holding it",
            )
        self.hc(f"setclrpath {dac}")
        return {"directory": dac, "version": single_file.product_version(dac), "single_file": path}

    def _at_breakpoint(self, bp_id: Optional[int]) -> bool:
        for thread in self._require_process():
            if (
                thread.GetStopReason() == lldb.eStopReasonBreakpoint
                and thread.GetStopReasonDataAtIndex(0) == bp_id
            ):
                self.process.SetSelectedThread(thread)  # type: ignore[union-attr]
                return True
        return False

    def _stop_text(self) -> str:
        thread = self._require_process().GetSelectedThread()
        return thread.GetStopDescription(200) or "no stop reason"

    # ----- arming the first-chance stops ---------------------------------------------------------------

    def op_arm(self) -> Dict[str, Any]:
        process = self._require_process()
        if self.mechanism:
            return {"mechanism": self.mechanism, "runtime_exception_count": self._runtime_exception_count()}
        assert self.target is not None
        append_frame = None
        if not _legacy_eh_requested(process.GetProcessID()):
            append_frame = self._append_frame_address()
        if append_frame is not None:
            # .NET 9+: the runtime's native AppendExceptionStackFrame, first frame of a throw. Native code
            # in libcoreclr's file-backed text: never re-JIT-ed, so one breakpoint serves cold and warm
            # processes alike, and no page protection is changed (docs/linux.md).
            self.mechanism = "append-frame"
            # The stub stops only for first frames of types not known not to match; its trap sees the
            # function's arguments, so the same handler serves it.
            if not self._install_inline(lldb.SBAddress(append_frame, self.target), True, True):
                bp = self.target.BreakpointCreateByAddress(append_frame)
                if bp.GetNumResolvedLocations() == 0:
                    self.target.BreakpointDelete(bp.GetID())
                    raise AgentError(
                        protocol.ERR_ARM,
                        f"lldb could not break at AppendExceptionStackFrame ({append_frame:#x})",
                    )
                self.append_bp = bp.GetID()
        elif self._has_new_eh():
            raise AgentError(
                protocol.ERR_ARM,
                "this runtime dispatches exceptions in managed code (.NET 9+) but its libcoreclr.so has no "
                "AppendExceptionStackFrame entry pydbgauto can find: this runtime version is not supported "
                f"yet ({self.runtime.get('version')})",
            )
        else:
            self.mechanism = "cxa-rethrow"
            bp = self.target.BreakpointCreateByName("__cxa_rethrow", "libstdc++.so.6")
            if bp.GetNumLocations() == 0:
                raise AgentError(
                    protocol.ERR_ARM, "no __cxa_rethrow in libstdc++.so.6: cannot stop at .NET 8 throws"
                )
            self.rethrow_bp = bp.GetID()
            # Hardware faults (NRE from a null dereference, divide by zero) raise no C++ exception on
            # .NET 8: followed from the runtime's signal handlers to the exception (legacy_faults.py).
            from pydbgauto.drivers.lldb.legacy_faults import LegacyFaults

            self.faults = LegacyFaults()
            self.fault_arming = self.faults.arm(self)
            self.funnel = self._throw_funnel()
            self._legacy_inline()
        self._arm_exit_count()
        self.journal.sites(self._breakpoint_bytes())
        return {
            "mechanism": self.mechanism,
            "runtime": self.runtime,
            "inline_filter": self._inline_state(),
            "runtime_exception_count": self._runtime_exception_count(),
        }

    def _arm_exit_count(self) -> None:
        """Break at libc's ``exit()`` where the runtime's counter is known: its count is read there, the
        process still whole, and kept for after the exit (a watch that ends at the exit reports it). A
        .NET program ends there when Main returns or it calls Environment.Exit; one stop per process."""
        if self.target is None or self._runtime_exception_count() is None:
            return
        bp = self.target.BreakpointCreateByName("exit", "libc.so.6")
        if bp.GetNumResolvedLocations() == 0:
            self.target.BreakpointDelete(bp.GetID())
            return
        self.exit_bp = bp.GetID()

    # ----- the in-target filter (inline_filter.py) ------------------------------------------------------

    def _install_inline(self, function: "lldb.SBAddress", in_handle: bool, first_frame: bool) -> bool:
        """Patch the funnel; False when it cannot be (why: inline_note)."""
        if os.environ.get("PYDBGAUTO_NO_INLINE_FILTER"):
            self.inline_note = "PYDBGAUTO_NO_INLINE_FILTER is set"
            return False
        try:
            self.inline = InlineFilter.install(self, function, in_handle, first_frame)
        except FilterUnavailable as e:
            self.inline_note = str(e)
            return False
        self.inline_note = None
        self.journal.patches([self.inline.journal_record()])
        return True

    def _remove_inline(self) -> None:
        if self.inline is not None:
            asking.stop(self)
            self._run_out_of_questions()
            removed = self.inline.remove(self)
            if removed.get("kept_for"):  # a thread runs out through them: never to be freed as lldb's
                self.kept_pages.update((self.inline.code_page, self.inline.data_page, self.inline.ask_page))
            self.inline_note = f"removed: {removed}"
            self.inline = None
            self.journal.patches([])
            if self.target is not None:  # the stub's trap is no site any more (its page is freed)
                self.journal.sites(self._breakpoint_bytes())
        self.funnel_pending.clear()

    def _run_out_of_questions(self, runs: int = 20, each: float = 0.02) -> None:
        """Before the stub is removed: a thread stopped in the middle of a question may be inside a system
        call, which the kernel restarts at the pc it had (docs/linux-fast-filter.md), so it cannot be
        moved; with no one answering any more (asking.stop) it leaves for the trap within microseconds of
        a resume. So the target runs ``each`` seconds at a time until no thread is in a question; a thread
        stopped at the trap meanwhile is moved back to the funnel's entry by ``remove`` and throws again
        there, unpatched: nothing is lost. Past ``runs`` the rest keep the stub's pages (remove)."""
        inline, process = self.inline, self.process
        if inline is None or process is None or not inline.stub.asking[1]:
            return
        for _ in range(runs):
            if process.GetState() != lldb.eStateStopped:
                return
            if not any(
                inline.stub.holds_lock(t.GetFrameAtIndex(0).GetPC() - inline.code_page) for t in process
            ):
                return
            self.stats["question_run_outs"] += 1
            self._pass_urg(False)  # a trap's SIGURG is dropped, as at any resume from it
            self._continue_until_stop(process, time.monotonic() + each)

    def _inline_state(self) -> Dict[str, Any]:
        if self.inline is None:
            return {"off": self.inline_note, "prefilter": self.prefilter_note}
        state = self.inline.stats(self)
        state["question"].update(answers=asking.stats(self))
        if self.prefilter_note:
            state["prefilter"]["note"] = self.prefilter_note
        try:  # per type: the throws ruled out in the target, never stopped for (none are logged)
            passed = self.inline.passed(self)
        except AgentError:
            passed = {}
        state["passed"] = {
            self.type_chains.get(mt, (f"MethodTable {mt:#x}",))[0]: n for mt, n in passed.items()
        }
        return state

    def _throw_funnel(self) -> Optional["lldb.SBAddress"]:
        """.NET 8: the start of RaiseTheExceptionInternalOnly, the function holding the one reference to
        its stress-log line (qcalls.find_throw_funnel_reference), by lldb's unwind-table symbols."""
        module = self._runtime_module()
        try:
            path = module.GetFileSpec().fullpath if module else None
            reference = (
                scan_cache.remembered(path, "funnel", lambda: qcalls.find_throw_funnel_reference(path))
                if path
                else None
            )
        except (OSError, qcalls.ElfError):
            reference = None
        if reference is None or module is None:
            self.inline_note = "no RaiseTheExceptionInternalOnly found in libcoreclr.so"
            return None
        symbol = module.ResolveFileAddress(reference).GetSymbol()
        start, end = symbol.GetStartAddress(), symbol.GetEndAddress()
        if not symbol.IsValid() or not start.GetFileAddress() <= reference < end.GetFileAddress():
            self.inline_note = "RaiseTheExceptionInternalOnly's start is not known to lldb"
            return None
        return start

    def _legacy_inline(self) -> None:
        """.NET 8: the stub serves only a filter that its type can rule out (else every throw would cost
        a funnel stop and a __cxa_rethrow stop); __cxa_rethrow then stops only for a pending match.

        Not for a message filter, although the trap could decide it: a stop at the stub's trap costs
        lldb-server ~2 ms here (lldb unwinds from a pc in no module, asking for memory regions, and
        lldb-server rebuilds its region list from /proc/PID/smaps after every resume), a stop at
        __cxa_rethrow ~0.8 ms (docs/linux-fast-filter.md)."""
        assert self.target is not None
        wanted = (
            self._type_rules_out()
            or (self.prefilter is not None and self.fields.off is None and self.prefilter_note is None)
            or (asking.wanted(self) and self.fields.trusted)  # the stub asks instead of stopping
        )
        if wanted and self.inline is None and self.funnel is not None:
            self._install_inline(self.funnel, False, False)
        elif not wanted and self.inline is not None:
            self._remove_inline()
        if self.rethrow_bp is not None:
            self.target.FindBreakpointByID(self.rethrow_bp).SetEnabled(self.inline is None)
        self.journal.sites(self._breakpoint_bytes())

    def _type_rules_out(self) -> bool:
        return self.filter_spec is not None and type_verdict(self.filter_spec, ("\0no such type",)) is False

    def _arm_prefilter(self) -> None:
        """.NET 8: once the field reader agrees with pe, the stub rules out by message/HResult too."""
        if (
            self.mechanism != "cxa-rethrow"
            or self.inline is None
            or not self.prefilter
            or self.inline.clauses
            or not self.fields.trusted
        ):
            return
        assert self.fields.message_at is not None and self.fields.hresult_at is not None
        try:
            self.inline.set_prefilter(self, self.fields.message_at, self.fields.hresult_at, self.prefilter)
        except (ValueError, AgentError, FilterUnavailable) as e:
            self.prefilter_note = f"not written: {e}"
        self.stats["prefilter_traps"] = 0

    def _prefilter_pays(self) -> bool:
        """False when the stub is there for the prefilter alone and most throws hold a clause (each then
        costs a trap and a __cxa_rethrow stop instead of one stop): checked every 64 traps."""
        traps = self.stats["prefilter_traps"]
        if self.inline is None or not self.inline.clauses or self._type_rules_out() or traps % 64:
            return True
        if self.verdicts is not None:  # the throws that hold a clause are asked about, not stopped for
            return True
        passed = self.inline.stats(self)["prefilter"].get("passed", 0)
        if passed >= traps:
            return True
        self.prefilter_note = f"given up: {traps} throws stopped, {passed} let through"
        return False

    def _funnel_trap(self, thread: "lldb.SBThread") -> None:
        """.NET 8, at the stub's trap (RaiseTheExceptionInternalOnly's entry, the object in rdi): the
        filter decides here (a type it rules out is cached in the target); a throw it cannot rule out
        waits for this thread's __cxa_rethrow, where a bare pe shows the exception."""
        assert self.inline is not None and self.target is not None
        self.stats["filter_traps"] += 1
        if self.inline.clauses:
            self.stats["prefilter_traps"] += 1
            if not self._prefilter_pays():
                # Back to __cxa_rethrow alone: this thread starts the funnel again (remove moves it to the
                # entry) and stops there for this same throw, so it is decided once.
                self._legacy_inline()
                return
        address = self.inline.exception_object(self, thread)
        seen = {
            "kind": protocol.EVENT_FIRST_CHANCE,
            "thread_id": thread.GetThreadID(),
            "exception_address": address,
        }
        if address and not self._passes_filter(seen, thread, at_funnel=True):
            return  # ruled out (and listed for the decision log)
        self.funnel_pending[thread.GetThreadID()] = seen
        self.target.FindBreakpointByID(self.rethrow_bp).SetEnabled(True)

    def _pending_rethrow(self, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        """.NET 8 with the stub: __cxa_rethrow reports the throw the funnel let through on this thread."""
        assert self.target is not None
        pending = self.funnel_pending.pop(thread.GetThreadID(), None)
        if not self.funnel_pending:
            self.target.FindBreakpointByID(self.rethrow_bp).SetEnabled(False)
        if pending is None:
            self.stats["other_thread_stops"] += 1
            return None
        self._require_process().SetSelectedThread(thread)
        return dict(
            pending,
            exception_address=pending.get("exception_address") or self._bare_pe_address(),
            description="__cxa_rethrow",
        )

    def _rule_out(self, address: int, chain: Tuple[str, ...]) -> bool:
        """True when the type alone rules the exception out; its MethodTable is then cached in the target."""
        if self.inline is None or self.filter is None or type_verdict(self.filter_spec, chain) is not False:
            return False
        try:
            self.inline.remember_not_matching(self, self._u64(address))
        except AgentError:
            pass
        return True

    def _append_frame_address(self) -> Optional[int]:
        """The load address of libcoreclr's AppendExceptionStackFrame, found through its QCall table."""
        return self._runtime_address(
            f"qcall {APPEND_FRAME_QCALL}",
            lambda path: qcalls.find_qcall(path, APPEND_FRAME_QCALL),
            lldb.ePermissionsExecutable,  # the table pointed somewhere that is not code: no breakpoint
        )

    def _runtime_address(
        self, what: str, scan: Callable[[str], Optional[int]], permission: int
    ) -> Optional[int]:
        """The load address of what ``scan(path)`` finds in the runtime's file (kept per file in the scan
        cache), where it lies in a section with ``permission``; None otherwise."""
        module = self._runtime_module()
        if module is None or self.target is None:
            return None
        path = module.GetFileSpec().fullpath
        try:
            file_address = scan_cache.remembered(path, what, lambda: scan(path))
        except (OSError, qcalls.ElfError):
            return None
        if file_address is None:
            return None
        address = module.ResolveFileAddress(file_address)
        section = address.GetSection()
        if not section.IsValid() or not (section.GetPermissions() & permission):
            return None
        load = address.GetLoadAddress(self.target)
        return int(load) if load != lldb.LLDB_INVALID_ADDRESS else None

    def _runtime_exception_count(self) -> Optional[int]:
        """The runtime's own count of exceptions thrown in the process so far (exception_counter.py), read
        only while the target is stopped (never stopped for it); None where it cannot be read."""
        if self.process is None or not self.process.IsValid():
            return None
        state = self.process.GetState()
        if state == lldb.eStateExited:
            return self.count_at_exit  # read at its exit() (None: it ended otherwise)
        if state != lldb.eStateStopped:
            return None
        if self.counter_address is None:
            if self._runtime_module() is None:
                return None  # a launch before the runtime's load: look again later
            self.counter_address = self._find_counter() or 0
        if not self.counter_address:
            return None
        try:
            return int(struct.unpack("<I", self._read(self.counter_address, 4))[0])
        except AgentError:
            return None

    def _find_counter(self) -> Optional[int]:
        return self._runtime_address(
            "fcall counter", exception_counter.find_counter, lldb.ePermissionsWritable  # data, not code
        )

    def _has_new_eh(self) -> bool:
        """True for runtimes whose exceptions never reach libstdc++ (.NET 9+ with its managed EH)."""
        version = self.runtime.get("version") or ""
        major = version.split(".")[0]
        return major.isdigit() and int(major) >= 9

    def op_disarm(self) -> Dict[str, Any]:
        assert self.target is not None
        self._remove_inline()
        for bp_id in (self.append_bp, self.rethrow_bp, self.exit_bp):
            if bp_id is not None:
                self.target.BreakpointDelete(bp_id)
        if self.faults is not None:
            self.faults.disarm(self)
        self.append_bp, self.rethrow_bp, self.mechanism, self.faults = None, None, None, None
        self.exit_bp = None
        self.journal.sites(self._breakpoint_bytes())
        return {}

    # ----- the in-agent filter ------------------------------------------------------------------------

    def op_set_filter(self, spec: Optional[Dict[str, Any]], read_fields: bool = False) -> Dict[str, Any]:
        """Evaluate this predicate here, at each first-chance stop; report only the matches.

        Stops that do not match are resumed at once and listed (compactly) with the next report, so
        the caller's decision log still accounts for every throw. ``read_fields`` (no spec): report
        every stop, each first-chance one with the message and HResult read from the object.
        """
        self.report_fields = bool(read_fields) and spec is None
        self.filter, self.filter_type_only, self.filter_spec = None, False, None
        self.filter_field_read = self.filter_site_read = False
        self.prefilter, self.prefilter_note = None, None
        if self.inline is not None:
            self.inline.forget(self)  # types ruled out by the last predicate may match this one
        result: Dict[str, Any] = {"filtering": False, "type_only": False}
        from pydbgauto import predicates

        predicate = predicates.from_spec(spec) if spec is not None else None
        # e.g. inner(...): the inner chain is fetched by the watch loop; deciding here without it
        # would resume exceptions that match. Leave such predicates to Python.
        if spec is not None and predicate is not None and predicate.needs <= AGENT_CAN_FETCH:
            self.filter, self.filter_spec = predicate, spec
            self.filter_type_only = spec_ops(spec) <= TYPE_ONLY_OPS
            self.filter_field_read = spec_ops(spec) <= SITE_READ_OPS
            self.filter_site_read = (
                "thrown_in" in spec_ops(spec)
                and self.filter_field_read
                and not os.environ.get("PYDBGAUTO_NO_THROW_SITES")  # every thrown_in throw reads clrstack
            )
            result = {"filtering": True, "type_only": self.filter_type_only}
            result["types_learnt"] = self._learn_named_types(spec)
            self.prefilter = condition(spec)
        if self.mechanism == "cxa-rethrow":
            self._legacy_inline()
            self._arm_prefilter()
        self._update_question()
        return dict(result, inline_filter=self._inline_state(), reading_fields=self.report_fields)

    def _update_question(self) -> None:
        """The stub asks instead of stopping when the predicate allows (asking.py); .NET 8 installs the
        stub for it."""
        if (
            self.mechanism == "cxa-rethrow"
            and self.inline is None
            and asking.wanted(self)
            and self.fields.trusted
        ):
            self._legacy_inline()
        asking.update(self)

    def op_ask(self, name: Optional[str]) -> Dict[str, Any]:
        """Python answers the stub's question at the socket ``name`` (None: no more): with no filter here
        (a callable predicate), .NET 8 asks it about each throw instead of stopping once the field reader
        is trusted (asking.py). Returns the types known so far (MethodTable -> chain)."""
        self.ask_python = name
        self._update_question()
        return {
            "asking": self.asking_python or stop_question.wanted(self),
            "pid": os.getpid(),  # lldb's: it asks at .NET 9+'s stops (stop_question.py)
            "type_chains": [[mt, list(chain)] for mt, chain in self.type_chains.items()],
        }

    def _learn_named_types(self, spec: Dict[str, Any], budget: float = 0.5) -> int:
        """The MethodTables of the types the predicate names that are loaded already, with their chains:
        a first throw of one then needs no SOS command at its stop (the stop's first SOS command costs
        ~45 ms: SOS re-reads CoreLib's metadata after each resume). Searched: CoreLib for System.* names,
        and modules whose assembly name prefixes a name (sos/modules.py), within ``budget`` seconds.
        Returns how many were learnt."""
        from pydbgauto.sos.modules import modules_to_search, parse_dumpdomain_modules, parse_dumpmodule_types

        wanted = sorted(named_types(spec) - {chain[0] for chain in self.type_chains.values()})
        if not wanted:
            return 0
        started = time.monotonic()
        learnt = 0
        try:
            modules = parse_dumpdomain_modules(self.hc("dumpdomain"))
            for address, _ in modules_to_search(wanted, modules):
                if time.monotonic() - started > budget:
                    break
                types = parse_dumpmodule_types(self.hc(f"dumpmodule -mt {address:x}"))
                for name in wanted:
                    mt = types.get(name)
                    if mt and self._chain_of(mt) is not None:
                        learnt += 1
        except Exception as e:  # noqa: BLE001 - only an optimisation: the first stop asks dumpmt instead
            _trace(f"learn types: {e}")
        self.stats["learn_seconds"] = round(time.monotonic() - started, 4)
        return learnt

    def _type_chain(self, address: int) -> Optional[Tuple[str, ...]]:
        """The object's type and base types from its MethodTable pointer; dumpmt once per type."""
        mt = self._method_table(address)
        return self._chain_of(mt) if mt is not None else None

    def _method_table(self, address: int) -> Optional[int]:
        try:
            return self._u64(address)
        except AgentError:
            return None

    def _chain_of(self, mt: int) -> Optional[Tuple[str, ...]]:
        """A MethodTable's type and base types (None: not an exception's); dumpmt once per type."""
        chain = self.type_chains.get(mt)
        if chain is not None:
            return chain
        from pydbgauto.sos.objects import parse_dumpmt

        names: List[str] = []
        current: Optional[int] = mt
        while current and len(names) < 32:
            known = self.type_chains.get(current)
            if known is not None:
                names.extend(known)
                break
            try:
                header = parse_dumpmt(self.hc(f"dumpmt {current:x}"))
            except Exception:
                return None
            names.append(header.name)
            current = header.parent
        chain = tuple(names)
        if "System.Exception" not in chain:
            return None
        self.type_chains[mt] = chain
        return chain

    def _passes_filter(self, event: Dict[str, Any], thread: "lldb.SBThread", at_funnel: bool = False) -> bool:
        """True when the event must be reported (no filter, or the filter matched or could not tell).
        ``at_funnel``: the thread is at the .NET 8 stub's trap (rsp and rbp as at the funnel's entry)."""
        if self.filter is None and stop_question.wanted(self):
            return not stop_question.let_go(self, event)  # a callable: pydbgauto's Python is asked
        if (
            self.filter is None
            or event["kind"] != protocol.EVENT_FIRST_CHANCE
            or not event.get("exception_address")
        ):
            return True
        from pydbgauto import predicates
        from pydbgauto.models import ManagedException, StopEvent
        from pydbgauto.sos.pe import parse_pe

        address = event["exception_address"]
        chain = self._type_chain(address)
        if chain is None:
            return True
        exception: Optional[ManagedException]
        stack = None
        if self.filter_type_only:
            exception = ManagedException(address=address, type=chain[0], message=None)
        else:
            exception = self._exception_from_fields(address, chain) if self.filter_field_read else None
            if exception is None or "stack" in self.filter.needs:
                self._require_process().SetSelectedThread(thread)
                try:
                    walked = self._stop_chain(thread) if self.filter_site_read else None
                    if walked is not None and exception is not None:
                        # thrown_in reads only the throw site: known from an earlier stop, no clrstack
                        stack = self.throw_sites.stack_at_stop(*walked, event["thread_id"])
                        self.stats["throw_site_known"] += stack is not None
                    if stack is None and "stack" in self.filter.needs:
                        stack, pe_text = self._stack_and_pe(thread, address)
                        if stack is None:
                            return True  # a deep stack: Python reads it in bounds
                        if walked is not None:
                            self._learn_site(walked, stack, at_funnel)
                        exception = exception or parse_pe(pe_text)
                    elif exception is None:
                        exception = parse_pe(self.hc(f"pe {address:x}"))
                except Exception:
                    return True  # let Python look at what the agent could not read
                self._check_fields(address, exception)
        stop = StopEvent(
            kind=protocol.EVENT_FIRST_CHANCE,
            thread_id=event["thread_id"],
            exception_address=address,
            exception=exception,
            stack=stack,
            type_chain=chain,
        )
        verdict = predicates.evaluate(self.filter, predicates.Facts(event=stop))
        if verdict.matched or verdict.error:
            event["type_chain"] = list(chain)
            if verdict.matched and not verdict.error:  # decided: the watch may dump before it reads SOS
                event["filter_matched"] = True
                if exception is not None and not self.filter_type_only:
                    event["message"], event["hresult"] = exception.message, exception.hresult
            return True
        self._rule_out(address, chain)
        self._note_filtered(event["thread_id"], address, chain)
        return False

    def runtime_range(self) -> Tuple[int, int]:
        """libcoreclr's mapped range, from its sections' load addresses ((0, 0): not loaded)."""
        if self.runtime_code is None:
            module = self._runtime_module()
            spans = []
            for i in range(module.GetNumSections() if module is not None else 0):
                section = module.GetSectionAtIndex(i)  # type: ignore[union-attr]
                start = section.GetLoadAddress(self.target)
                if start != lldb.LLDB_INVALID_ADDRESS and section.GetByteSize():
                    spans.append((int(start), int(start) + section.GetByteSize()))
            if not spans:
                return (0, 0)
            self.runtime_code = (min(s for s, _ in spans), max(e for _, e in spans))
        return self.runtime_code

    def _stop_chain(self, thread: "lldb.SBThread") -> Optional[Tuple[int, Tuple[int, ...]]]:
        """(pc, the return addresses up the frame-pointer chain) of a stopped thread (throw_sites.walk):
        at the .NET 8 stub's trap, rsp and rbp are the funnel's entry's, so it starts as the question's."""
        frame = thread.GetFrameAtIndex(0)
        rbp = frame.FindRegister("rbp")
        if not frame.IsValid() or not rbp.IsValid():
            return None
        try:
            sp, fp = frame.GetSP(), rbp.GetValueAsUnsigned()
            return frame.GetPC(), throw_sites.walk(self._u64, sp, fp, None, throw_sites.STOP_FRAMES)
        except (AgentError, struct.error):
            return None

    def _learn_site(self, walked: Tuple[int, Tuple[int, ...]], stack: Any, at_funnel: bool) -> None:
        pc, chain = walked
        self.throw_sites.learn_at_stop(pc, chain, stack)
        if at_funnel:  # the question's key: the chain as the stub sends it
            self.throw_sites.learn(throw_sites.key(chain, self.runtime_range()), stack)

    def _stack_and_pe(self, thread: "lldb.SBThread", address: int) -> Tuple[Any, str]:
        """(parsed clrstack or None for a stack too deep to read here, pe text) of a stop, both through
        the stop cache: a throw at a place the cache has seen costs no SOS command (stop_cache.py)."""
        from pydbgauto.drivers.lldb.stack_reader import read_stack
        from pydbgauto.sos.clrstack import parse_clrstack

        reply = read_stack(self, thread.GetThreadID())
        if reply.get("deep"):
            return None, ""
        return parse_clrstack(reply["text"]), self.stop_cache.pe(self, address)

    def _exception_from_fields(self, address: int, chain: Tuple[str, ...]) -> Optional["ManagedException"]:
        """The exception's type, message and HResult read from the object (exception_fields.py), once the
        reader's first reads agreed with pe; None: ask SOS."""
        from pydbgauto.models import ManagedException

        if not self.fields.trusted:
            return None
        try:
            message, hresult = self.fields.read(self._read, address)
        except (AgentError, ValueError, struct.error):
            return None
        self.stats["field_reads"] += 1
        return ManagedException(address=address, type=chain[0], message=message, hresult=hresult)

    def _check_fields(self, address: int, exception: Optional["ManagedException"]) -> None:
        """Learn the field offsets from one dumpobj, then compare the reader with pe until it is trusted."""
        if not (self.filter_field_read or self.prefilter or self.report_fields) or exception is None:
            return
        if self.fields.off or self.fields.trusted:
            return
        from pydbgauto.sos.objects import parse_dumpobj_fields

        try:
            if self.fields.message_at is None:
                kept = exception_layout.kept(self)  # an earlier session of this runtime learnt them
                if kept is not None:
                    self.fields.learn(list(kept.items()))
                else:
                    rows = parse_dumpobj_fields(self.hc(f"dumpobj {address:x}"))
                    self.fields.learn([(row.name, row.offset) for row in rows])
                    exception_layout.keep(
                        self, [(r.name, r.offset) for r in rows if r.attribute == "instance"]
                    )
            if self.fields.off is None:
                read = self.fields.read(self._read, address)
                self.fields.check(read, exception.message, exception.hresult)
        except Exception as e:  # noqa: BLE001 - the reader stays off; pe keeps answering
            self.fields.off = f"could not read the fields: {e}"
        if self.fields.off is None and self.fields.inner_at is not None and self.fields.inner_off is None:
            try:  # its own trust: a failed inner read costs only the "no inner exception" shortcut
                inner = self.fields.inner(self._read, address)
                self.fields.check_inner(inner, exception.inner_address, exception.inner_type)
            except Exception as e:  # noqa: BLE001
                self.fields.inner_off = f"could not read _innerException: {e}"
        self._arm_prefilter()
        self._update_question()

    def _note_filtered(self, thread_id: int, address: int, chain: Tuple[str, ...]) -> None:
        if _TRACE:
            _trace(f"filtered {thread_id} {address:#x}")
        self.filtered.append(
            {"thread_id": thread_id, "exception_address": address, "type": chain[0], "time": time.time()}
        )

    # ----- running and stopping ------------------------------------------------------------------------

    def op_resume(self, timeout: Optional[float], flush_after: Optional[float] = None) -> Dict[str, Any]:
        """Run until the next event worth reporting; handle notification stops on the way.

        ``timeout``: past it the target is interrupted (EVENT_TIMEOUT). ``flush_after``: past it, the
        stops the filter resumed are sent (EVENT_TIMEOUT too): at the next of them, where the target is
        stopped anyway, or at the deadline if none comes; with none to send it never stops the target."""
        process = self._require_process()
        if self.pending:
            return self._report(self.pending.pop(0))
        self.filtered = []
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        flush_at = None if flush_after is None else started + flush_after
        let_go = self.stats["let_go_at_stops"]  # Python logs those (stop_question.py): flushed the same

        def to_log() -> bool:
            return bool(self.filtered) or self.stats["let_go_at_stops"] != let_go

        while True:
            run_until = deadline
            # the log waits for these (or for what the question lets go meanwhile): until flush_at at most
            if flush_at is not None and (to_log() or asking.live(self)):
                run_until = flush_at if deadline is None else min(deadline, flush_at)
            interrupted = self._continue_until_stop(process, run_until)
            state = process.GetState()
            if state == lldb.eStateExited:
                status, description = process.GetExitStatus(), process.GetExitDescription() or ""
                if status == -1 and "lost connection" in description:
                    # lldb sometimes loses lldb-server as the target exits (about 1 run in 10 here):
                    # the target is gone, its status is unknown.
                    status, description = None, "lldb lost it: lost connection"
                return {
                    "kind": protocol.EVENT_EXIT,
                    "exit_status": status,
                    "description": description,
                    protocol.FILTERED: self._take_filtered(),
                    "runtime_exception_count": self.count_at_exit,  # read at its exit() or abort
                }
            if state != lldb.eStateStopped:
                raise AgentError(
                    protocol.ERR_STATE, f"unexpected process state {lldb.SBDebugger.StateAsCString(state)}"
                )
            self.stats["stops"] += 1
            events = self._collect_events(process)
            if events:
                self.pending.extend(events[1:])
                return self._report(events[0])
            if interrupted == protocol.EVENT_TIMEOUT and flush_at is not None and asking.live(self):
                if deadline is None or time.monotonic() < deadline:  # the flush's, not the caller's limit
                    asking.drain(self)
                    # nothing to send yet: look again a flush_after later (Python's answering thread
                    # keeps what it let go: its caller logs them at each return)
                    if not self.filtered and not self.asking_python:
                        flush_at = time.monotonic() + max(float(flush_after or 0.0), 0.05)
                        continue
                    self.stats["flushes"] += 1
            if interrupted:
                return {"kind": interrupted, protocol.FILTERED: self._take_filtered()}
            if flush_at is not None and to_log() and time.monotonic() >= flush_at:
                self.stats["flushes"] += 1
                return {"kind": protocol.EVENT_TIMEOUT, protocol.FILTERED: self._take_filtered()}
            # Only later frames of a reported throw, filtered throws or a stray stop: go on.

    def _continue_until_stop(self, process: "lldb.SBProcess", deadline: Optional[float]) -> Optional[str]:
        """Continue synchronously; the session's ContinueWatch interrupts at the deadline or on a cancel
        byte (continue_watch.py). Returns why it was interrupted, or None."""
        started = time.monotonic()
        self.continue_watch.begin(process, deadline)
        self.rehits.before_run(process)
        self.journal.release()
        error = process.Continue()
        if process.GetState() == lldb.eStateStopped:  # not if lldb-server died meanwhile
            self.journal.hold(_thread_stops(process))
        why = self.continue_watch.end()
        if why and process.GetState() == lldb.eStateStopped:  # our interrupt may have met a fork's stop
            self._lost_forks(
                process,
                [(t.GetStopReason(), t.GetStopReasonDataAtIndex(0)) for t in process],
            )
        if why:
            self.stats["interrupts"] += 1
            if _TRACE:
                _trace(f"run interrupted: {why}")
        self.stats["run_seconds"] += time.monotonic() - started
        if not error.Success() and process.GetState() == lldb.eStateStopped and not why:
            raise AgentError(protocol.ERR_CONTINUE, f"could not resume the target: {error.GetCString()}")
        return why

    def _lost_forks(self, process: "lldb.SBProcess", stops: List[Tuple[int, int]]) -> None:
        """A fork, vfork or vfork-done stop lldb marked interrupted: its work done here (lost_forks.py).
        ``stops``: (stop reason, its first datum) of threads; once a stop (an interrupt lldb could not
        deliver at once marks the next stop instead: collect_events looks again)."""
        stops = [(reason, child) for reason, child in stops if reason in lost_forks.REASONS]
        if not stops or process.GetStopID() == self.forks_seen_at:
            return
        self.forks_seen_at = process.GetStopID()
        event = process.GetStopEventForStopID(process.GetStopID())
        if event.IsValid() and not lldb.SBProcess.GetInterruptedFromEvent(event):
            return  # lldb did the work itself
        if not event.IsValid():  # unknown: only what /proc shows undone (a child still held)
            stops = [(reason, child) for reason, child in stops if reason != lost_forks.VFORK_DONE]
        tracer = processes.tracer_of(process.GetProcessID())  # lldb-server
        packets = lost_forks.plan(
            stops, lost_forks.enabled_sites(self.target), lambda child: processes.tracer_of(child) == tracer
        )
        for packet in packets:
            reply = _raw_packet(self, packet)
            if reply != "OK":
                _trace(f"lost fork: {packet} answered {reply!r}")
        self.stats["lost_forks"] += len(stops)
        _trace(f"lost forks {stops}: {len(packets)} packets")

    def _collect_events(self, process: "lldb.SBProcess") -> List[Dict[str, Any]]:
        events: List[Dict[str, Any]] = []
        trap_stops = foreign_urg = False
        forks: List[Tuple[int, int]] = []
        for thread in process:
            reason = thread.GetStopReason()
            if reason in lost_forks.REASONS:
                forks.append((reason, thread.GetStopReasonDataAtIndex(0)))
            if _TRACE:  # the message unwinds the thread: build it only when tracing
                _trace(
                    f"stop {self.stats['stops']} thread {thread.GetThreadID()} reason {reason} "
                    f"data {thread.GetStopReasonDataAtIndex(0) if reason else None} "
                    f"pc {thread.GetFrameAtIndex(0).GetPC():#x}"
                )
            if self.rehits.is_repeat(thread, reason):
                continue  # lldb's second report of a hit already handled (rehits.py)
            trap = self._trap_stop(thread) if reason == lldb.eStopReasonSignal else None
            if reason == lldb.eStopReasonSignal and thread.GetStopReasonDataAtIndex(0) == SIGURG:
                if trap is None:
                    if _TRACE:
                        _trace_foreign(process, thread)
                    foreign_urg = True
                    self.stats["passed_sigurg"] += 1
                    continue  # the target's own SIGURG: passed on at the resume
                trap_stops = True
            if trap is False:
                continue  # a trap's SIGURG that came late, or a signal behind a trap handled already
            if trap:
                if self.mechanism == "append-frame":  # .NET 9+: AppendExceptionStackFrame's own handler
                    event = self._first_chance_append(thread)
                    if event is not None and self._passes_filter(event, thread):
                        events.append(event)
                else:
                    self._funnel_trap(thread)  # .NET 8's funnel
                continue
            if reason == lldb.eStopReasonBreakpoint:
                bp_id = thread.GetStopReasonDataAtIndex(0)
                if bp_id == self.exit_bp:
                    self.count_at_exit = self._runtime_exception_count()  # not an event: on to the exit
                elif bp_id == self.append_bp:
                    event = self._first_chance_append(thread)
                    if event is not None and self._passes_filter(event, thread):
                        events.append(event)
                elif bp_id == self.rethrow_bp and self.inline is not None:
                    event = self._pending_rethrow(thread)  # the funnel's trap decided it already
                    if event is not None:
                        events.append(event)
                elif bp_id == self.rethrow_bp:
                    event = self._first_chance_legacy(thread)
                    if self._passes_filter(event, thread):
                        events.append(event)
                elif self.faults is not None:
                    event = self.faults.on_stop(self, thread)  # .NET 8 hardware faults (legacy_faults.py)
                    if event is not None and self._passes_filter(event, thread):
                        events.append(event)
            elif reason == lldb.eStopReasonSignal and thread.GetStopReasonDataAtIndex(0) == SIGABRT:
                event = {
                    "kind": protocol.EVENT_SECOND_CHANCE,
                    "thread_id": thread.GetThreadID(),
                    "exception_address": None,
                    "description": "SIGABRT: the runtime is aborting",
                }
                self.count_at_exit = self._runtime_exception_count()  # it dies without an exit()
                details = self.faults.abort_details(thread) if self.faults is not None else None
                if details:
                    event["fault"] = details
                    event["description"] += f" after {details['description']}"
                events.append(event)
            elif self.faults is not None and reason == lldb.eStopReasonSignal:
                event = self.faults.on_stop(self, thread)  # the fallback mode stops at the signals
                if event is not None and self._passes_filter(event, thread):
                    events.append(event)
        if forks:
            self._lost_forks(process, forks)
        if trap_stops or foreign_urg:
            self._pass_urg(foreign_urg)
        if self.faults is not None and self.target is not None:
            count = self.target.GetNumBreakpoints()
            if count != self.journaled_breakpoints:  # legacy_faults adds and removes its own: journal them
                self.journaled_breakpoints = count
                self.journal.sites(self._breakpoint_bytes())
        return events

    def _trap_stop(self, thread: "lldb.SBThread") -> Optional[bool]:
        """At a signal stop: True for the in-target filter's trap to handle (the pc just behind its
        syscall, whichever signal stopped the thread there), False for a stop to drop (the SIGURG of a
        trap handled already), None for neither (trap_signals.py)."""
        if self.inline is None:
            return None
        frame = thread.GetFrameAtIndex(0)
        urg = thread.GetStopReasonDataAtIndex(0) == SIGURG
        if frame.GetPC() != self.inline.trap_pc:
            return False if urg and self.trap_signals.urg_elsewhere(thread.GetThreadID()) else None
        key = (frame.GetSP(), self.inline.exception_object(self, thread))  # read again from lldb's cache
        if urg:
            return self.trap_signals.urg_at_trap(thread.GetThreadID(), key)
        return self.trap_signals.other_signal_at_trap(thread.GetThreadID(), key)

    def _pass_urg(self, foreign: bool) -> None:
        """At the resume, the trap's SIGURG is dropped; a SIGURG of the target's own (a stop not at the
        trap) is passed on. lldb decides per signal, not per thread: with both at one stop, both pass
        (neither runtime catches SIGURG: the trap's is ignored then)."""
        if self.process is not None and self.urg_suppressed == foreign:
            self.process.GetUnixSignals().SetShouldSuppress(SIGURG, not foreign)
            self.urg_suppressed = not foreign

    def _take_filtered(self) -> List[Dict[str, Any]]:
        asking.drain(self)
        filtered, self.filtered = self.filtered, []
        if _TRACE:
            _trace(f"take {len(filtered)}")
        return filtered

    def _report(self, event: Dict[str, Any]) -> Dict[str, Any]:
        _trace(f"report {event['thread_id']} {event.get('exception_address')} pending {len(self.pending)}")
        event[protocol.FILTERED] = self._take_filtered()
        address = event.get("exception_address")
        if address and not event.get("type_chain") and event["kind"] == protocol.EVENT_FIRST_CHANCE:
            # The MethodTable's chain (dumpmt once per type): Python need not ask SOS for it at this stop
            mt = self._method_table(address)
            chain = self._chain_of(mt) if mt is not None else None
            if chain is not None:
                event["type_chain"] = list(chain)
                event["method_table"] = mt  # Python's answering thread knows the type by it (asking.py)
                if self.report_fields:
                    self._add_fields(event, address, chain)
        self.last_event = event
        process = self._require_process()
        thread = process.GetThreadByID(event["thread_id"])
        if thread.IsValid():
            process.SetSelectedThread(thread)
        return event

    def _add_fields(self, event: Dict[str, Any], address: int, chain: Tuple[str, ...]) -> None:
        """The event's message and HResult: read from the object once the reader agrees with pe (before
        that, from pe, checking the reader); and whether it has no inner exception, where known."""
        exception = self._exception_from_fields(address, chain)
        no_inner: Optional[bool] = None
        if exception is not None and self.fields.inner_trusted:
            try:
                no_inner = self.fields.inner(self._read, address) == 0
            except (AgentError, struct.error):
                no_inner = None
        elif exception is None and not self.fields.off:
            from pydbgauto.sos.pe import parse_pe

            try:
                exception = parse_pe(self.hc(f"pe {address:x}"))
            except Exception:  # noqa: BLE001 - Python reads the stop with SOS instead
                return
            if exception is None:
                return
            self._check_fields(address, exception)
            no_inner = exception.inner_address is None and exception.inner_type is None
        if exception is not None:
            event["message"], event["hresult"], event["fields_read"] = (
                exception.message,
                exception.hresult,
                True,
            )
            if no_inner:
                event["no_inner"] = True

    def _first_chance_append(self, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        """AppendExceptionStackFrame(ObjectHandleOnStack exception, ip, sp, flags, ExInfo*): an event on
        the first frame of a throw; later frames of the same first pass are resumed at once."""
        frame = thread.GetFrameAtIndex(0)
        inline = self.inline

        def argument(register: str) -> int:
            if inline is not None:  # at the stub's trap the arguments are in their slots
                return inline.argument(self, frame, register)
            return int(frame.FindRegister(register).GetValueAsUnsigned())

        flags = argument("rcx") & 0xFFFFFFFF
        if _TRACE:
            _trace(f"append {thread.GetThreadID()} flags {flags:#x}")
        if not flags & RH_EH_FIRST_FRAME:
            self.stats["frame_stops"] += 1
            return None
        if self.inline is not None:
            self.stats["filter_traps"] += 1
        self._require_process().SetSelectedThread(thread)
        address: Optional[int] = None
        try:
            candidate = self._u64(argument("rdi"))  # the handle's slot
            address = candidate if self._is_exception(candidate) else None
        except AgentError:
            pass
        return {
            "kind": protocol.EVENT_FIRST_CHANCE,
            "thread_id": thread.GetThreadID(),
            "exception_address": address,
            "description": "rethrow" if flags & RH_EH_FIRST_RETHROW_FRAME else "throw",
        }

    def _is_exception(self, address: int) -> bool:
        """SOS accepts the object as an exception; a type seen before is known without asking SOS."""
        try:
            if self._u64(address) in self.type_chains:
                return True
        except AgentError:
            return False
        return self._type_chain(address) is not None

    def _first_chance_legacy(self, thread: "lldb.SBThread") -> Dict[str, Any]:
        """__cxa_rethrow on .NET 8: the thread's last thrown object is the new exception.

        Read from the runtime's Thread object (its handle slot, located once by matching what a bare
        ``pe`` shows, and checked against ``pe`` for the first few stops), so a stop costs no SOS
        command; ``pe`` is the fallback whenever the read cannot be trusted.
        """
        self._require_process().SetSelectedThread(thread)
        tid = thread.GetThreadID()
        if self.lto_checks == 0 and self.lto_offset is None:
            self._kept_thread_slots()
        address = self._last_thrown_read(tid)
        if address is None or self.lto_checks < LTO_CHECKS:
            shown = self._bare_pe_address()
            if shown is not None and address is not None and shown != address:
                self.lto_offset = None  # the slot was wrong after all: SOS decides from now on
                self.lto_checks = LTO_CHECKS
            elif shown is not None and address is None and self.lto_offset is None:
                self._find_last_thrown_slot(tid, shown)
            elif shown is not None:
                self.lto_checks += 1
                if self.lto_checks == LTO_CHECKS:
                    self._keep_thread_slots()
            address = shown
        if _TRACE:
            _trace(f"legacy first-chance {tid} object {address} sp {thread.GetFrameAtIndex(0).GetSP():#x}")
        return {
            "kind": protocol.EVENT_FIRST_CHANCE,
            "thread_id": tid,
            "exception_address": address,
            "description": "__cxa_rethrow",
        }

    def _bare_pe_address(self) -> Optional[int]:
        from pydbgauto.sos.pe import parse_pe

        try:
            exception = parse_pe(self.hc("pe"))
        except Exception:
            return None
        return exception.address if exception else None

    def _thread_object(self, tid: int) -> Optional[int]:
        """The runtime's Thread object of an OS thread (clrthreads once per new thread). A cached one
        must still hold the thread's id (OS thread ids are reused by new threads)."""
        cached = self.thread_objects.get(tid)
        if cached is not None and self.tid_offset is not None:
            try:
                if struct.unpack("<I", self._read(cached + self.tid_offset, 4))[0] != tid:
                    cached = None
            except AgentError:
                cached = None
            if cached is None:
                del self.thread_objects[tid]
        if tid not in self.thread_objects:
            from pydbgauto.sos.threads import parse_threads

            try:
                table = parse_threads(self.hc("clrthreads"))
            except Exception:
                return None
            self.thread_objects.update({t.os_id: t.thread_obj for t in table.threads if t.thread_obj})
        return self.thread_objects.get(tid)

    def _find_last_thrown_slot(self, tid: int, exception: int) -> None:
        """The offset in the Thread object of the handle that holds ``exception`` (the last thrown)."""
        thread_obj = self._thread_object(tid)
        if thread_obj is None:
            return
        try:
            data = self._read(thread_obj, THREAD_SCAN_BYTES)
        except AgentError:
            return
        tid_slots = [o for o in range(0, len(data) - 3, 4) if struct.unpack_from("<I", data, o)[0] == tid]
        if len(tid_slots) != 1:
            return  # the thread's id must be findable, once, to check cached Thread objects later
        self.tid_offset = tid_slots[0]
        for offset in range(0, len(data) - 7, 8):
            handle = struct.unpack_from("<Q", data, offset)[0]
            try:
                if handle >= 0x10000 and self._u64(handle) == exception:
                    self.lto_offset = offset
                    return
            except AgentError:
                continue

    # The two slots are offsets in the runtime's Thread class: facts of the libcoreclr.so file, so once
    # LTO_CHECKS stops have matched them against SOS they are kept with it (scan_cache.py), and a later
    # session's stops read the object without a bare pe from the first one (~90 ms at a stop whose
    # first SOS command it is). A read that fails still goes to pe, as before.
    _LTO_SLOT, _TID_SLOT = "Thread slot: last thrown object", "Thread slot: OS thread id"

    def _kept_thread_slots(self) -> None:
        path = self._coreclr_path()
        lto = scan_cache.known(path, self._LTO_SLOT) if path else None
        tid = scan_cache.known(path, self._TID_SLOT) if path else None
        if lto is not None and tid is not None:
            self.lto_offset, self.tid_offset, self.lto_checks = lto, tid, LTO_CHECKS
            self.stats["thread_slots_kept"] = True

    def _keep_thread_slots(self) -> None:
        path = self._coreclr_path()
        if path and self.lto_offset is not None and self.tid_offset is not None:
            scan_cache.keep(path, self._LTO_SLOT, self.lto_offset)
            scan_cache.keep(path, self._TID_SLOT, self.tid_offset)

    def _coreclr_path(self) -> Optional[str]:
        module = self._runtime_module()
        return module.GetFileSpec().fullpath if module is not None else None

    def _last_thrown_read(self, tid: int) -> Optional[int]:
        if self.lto_offset is None:
            return None
        handle = self._known_thread_slot(tid, self.lto_offset)
        if handle is None:
            thread_obj = self._thread_object(tid)
            if thread_obj is None:
                return None
            try:
                handle = self._u64(thread_obj + self.lto_offset)
            except AgentError:
                return None
        try:
            candidate = self._u64(handle)
        except AgentError:
            return None
        return candidate if self._is_exception(candidate) else None

    def _known_thread_slot(self, tid: int, offset: int) -> Optional[int]:
        """The 8 bytes at ``offset`` of a remembered Thread object still holding ``tid``, in one read with
        its id (each read at a new place is a round trip to lldb-server); None: not known, or reused."""
        thread_obj, tid_offset = self.thread_objects.get(tid), self.tid_offset
        if thread_obj is None or tid_offset is None:
            return None
        low, high = min(tid_offset, offset), max(tid_offset + 4, offset + 8)
        try:
            data = self._read(thread_obj + low, high - low)
        except AgentError:
            return None
        if struct.unpack_from("<I", data, tid_offset - low)[0] != tid:
            return None  # _thread_object finds the thread's new object
        return int(struct.unpack_from("<Q", data, offset - low)[0])

    # ----- commands while stopped ----------------------------------------------------------------------

    def op_exec(self, command: str, thread_id: Optional[int] = None) -> Dict[str, Any]:
        process = self._require_process()
        if thread_id is not None:
            thread = process.GetThreadByID(thread_id)
            if not thread.IsValid():
                raise AgentError(protocol.ERR_THREAD, f"no thread {thread_id} in the target")
            process.SetSelectedThread(thread)
        ro = lldb.SBCommandReturnObject()
        self.ci.HandleCommand(command, ro)
        return {"output": ro.GetOutput() or "", "error": ro.GetError() or "", "succeeded": ro.Succeeded()}

    def op_stop_stack(
        self,
        thread_id: Optional[int],
        max_frames: int,
        budget: float,
        exception_address: Optional[int] = None,
    ) -> Dict[str, Any]:
        """A thread's managed stack in bounds: clrstack up to ``max_frames`` frames, else a bounded read;
        with ``exception_address`` and a stack within bounds, also ``pe`` of it (both from the stop cache
        when this stop is provably like an earlier one: stop_cache.py)."""
        from pydbgauto.drivers.lldb.stack_reader import read_stack

        reply = read_stack(self, thread_id, limit=max_frames, budget=budget)
        if exception_address and not reply.get("deep"):
            reply["pe"] = self.stop_cache.pe(self, exception_address)
        return reply

    @property
    def stop_cache(self) -> "StopCache":
        if self._stop_cache is None:
            from pydbgauto.drivers.lldb.stop_cache import StopCache

            self._stop_cache = StopCache()
        return self._stop_cache

    def op_threads(self) -> Dict[str, Any]:
        process = self._require_process()
        return {
            "threads": [t.GetThreadID() for t in process],
            "selected": process.GetSelectedThread().GetThreadID(),
        }

    def op_dump(self, path: str) -> Dict[str, Any]:
        """Write an ELF core of the stopped target to ``path`` (a new file)."""
        from pydbgauto import coredump

        process = self._require_process()
        _trace(f"dump {path}")
        started = time.monotonic()
        # a thread in the stub is shown where it is in the unpatched code: the core has the original bytes
        shown = self.inline.as_unpatched if self.inline is not None else (lambda _agent, registers: registers)
        threads = [
            coredump.ThreadState(tid=t.GetThreadID(), registers=shown(self, _gp_registers(t)))
            for t in process
        ]
        selected = process.GetSelectedThread().GetThreadID()
        threads.sort(key=lambda t: t.tid != selected)  # the current thread first, as the kernel does
        info = coredump.write_core(
            path,
            process.GetProcessID(),
            threads,
            exception=self._exception_record(selected),
            patches=self._breakpoint_bytes() + ([self.inline.journal_record()[:2]] if self.inline else []),
        )
        info["seconds"] = time.monotonic() - started
        return info

    def _exception_record(self, thread_id: int) -> "Optional[coredump.ExceptionRecord]":
        """For the dump's diagnostic page: the exception of the last event, if it is this thread's.
        Parameters: the exception object's address and the OS thread id (documented in docs/linux.md)."""
        event = self.last_event
        if event is None or event.get("thread_id") != thread_id or event.get("kind") == protocol.EVENT_EXIT:
            return None
        thread = self._require_process().GetThreadByID(thread_id)
        pc = thread.GetFrameAtIndex(0).GetPC() if thread.IsValid() else 0
        address = event.get("exception_address") or 0
        from pydbgauto import coredump

        return coredump.ExceptionRecord(code=CLR_EXCEPTION_CODE, address=pc, parameters=(address, thread_id))

    def _breakpoint_bytes(self) -> List[Tuple[int, bytes]]:
        """(address, original byte) of every breakpoint site: lldb's reads show the original bytes,
        /proc/<pid>/mem shows the int3 the core writer must not keep (nor the guardian leave behind)."""
        assert self.target is not None
        addresses: List[int] = []
        for bp in self.target.breakpoint_iter():
            for i in range(bp.GetNumLocations()):
                location = bp.GetLocationAtIndex(i)
                if location.IsResolved():
                    addresses.append(location.GetLoadAddress())
        # lldb's own (internal) breakpoints, e.g. the shared-library event one in ld.so's _dl_debug_state.
        listing = lldb.SBCommandReturnObject()
        self.ci.HandleCommand("breakpoint list --internal", listing)
        internal = listing.GetOutput() or ""
        addresses += [int(a, 16) for a in re.findall(r"address = (0x[0-9a-fA-F]+), resolved", internal)]
        patches: List[Tuple[int, bytes]] = []
        for address in sorted(set(addresses)):
            try:
                patches.append((address, self._read(address, 1)))
            except AgentError:
                pass
        return patches

    def op_stats(self) -> Dict[str, Any]:
        faults = self.faults.stats if self.faults is not None else None
        cache = self._stop_cache.stats if self._stop_cache is not None else None
        return dict(
            self.stats,
            runtime_exception_count=self._runtime_exception_count(),
            mechanism=self.mechanism,
            faults=faults,
            fault_arming=self.fault_arming,
            stop_cache=cache,
            inline_filter=self._inline_state(),
            rehits=self.rehits.count,
            traps_behind_a_signal=self.trap_signals.early,
            late_trap_signals=self.trap_signals.dropped,
        )

    # ----- leaving --------------------------------------------------------------------------------------

    def op_detach(self) -> Dict[str, Any]:
        process = self._require_process()
        self._remove_inline()
        if self.target is not None:
            self.target.DeleteAllBreakpoints()
        freed = self._free_debugger_memory(process)
        count = self._runtime_exception_count()  # the last stop: a watch's end
        self.journal.detaching()
        error = process.Detach()
        if not error.Success():
            raise AgentError(protocol.ERR_DETACH, f"detach failed: {error.GetCString()}")
        self.journal.detached()
        return {"freed": freed, "runtime_exception_count": count}

    def leave_at_quit(self) -> None:
        """lldb quits with the target still ours: end of input (pydbgauto's Python is gone without a
        detach, e.g. SIGKILLed) or its ``quit`` after a detach that failed. lldb's own quit would kill a
        target it launched, and detach an attached one leaving the in-target filter's jump and lldb's code
        pages in it (the guardian puts the jump back from its journal, not the pages; a launched target has
        no guardian). So the agent leaves first, as at a detach; or kills, if the launch asked for that."""
        try:
            process = self._require_process()
        except AgentError:
            return  # gone, detached already, or never there: lldb has nothing to do either
        try:
            if process.GetState() == lldb.eStateRunning:
                process.Stop()
            if self.kill_at_quit:
                self.op_kill()
            else:
                self.op_detach()
            _trace(f"left at quit: {'killed' if self.kill_at_quit else 'detached'}")
        except Exception as e:  # lldb's own quit is still there after this
            _trace(f"leave at quit failed: {type(e).__name__}: {e}")

    def _free_debugger_memory(self, process: "lldb.SBProcess") -> List[str]:
        """Give back the code memory lldb allocated in the target for expressions (an anonymous rwx or
        r-x page per allocation, e.g. .NET 8's sigaction expression at arming; kept for good otherwise).
        Only lldb-server's own allocations can be freed this way: it refuses any other region."""
        freed = []
        for start, end in sorted(_anonymous_code(process.GetProcessID()) - self.maps_at_start):
            if start in self.kept_pages:
                continue  # the stub's code page, kept for a thread that is still in it
            # lldb's memory cache keeps the page after DeallocateMemory; lldb-server's own `_m` packet
            # unmaps what it allocated with `_M` (it refuses any other address).
            reply = self.target_syscall(f"_m{start:x}")
            if reply == "OK":
                freed.append(f"{start:x}-{end:x}")
            _trace(f"free {start:x}-{end:x}: {reply}")
        return freed

    def op_kill(self) -> Dict[str, Any]:
        process = self._require_process()
        if self.verdicts is not None:  # no one asks a killed target's questions
            self.verdicts.close()
            self.verdicts = None
        self.asking_python = False
        count = self._runtime_exception_count()
        process.Kill()
        return {"exit_status": process.GetExitStatus(), "runtime_exception_count": count}


_TRACE = os.environ.get("PYDBGAUTO_AGENT_TRACE")
_PROFILE = os.environ.get("PYDBGAUTO_AGENT_PROFILE")


def _raw_packet(agent: Agent, packet: str) -> str:
    """One gdb-remote packet to lldb-server; its reply (pages are allocated and freed this way, past
    lldb's own allocation cache, which would hand a freed page out again to an expression)."""
    result = lldb.SBCommandReturnObject()
    agent.ci.HandleCommand(f"process plugin packet send {packet}", result)
    text = (result.GetOutput() or "") + (result.GetError() or "")
    m = re.search(r"response:\s*(\S*)", text)
    _trace(f"packet {packet}: {text!r}")
    return m.group(1) if m else ""


def _trace_foreign(process: Any, thread: Any) -> None:
    """Debugging aid: where a SIGURG not at the trap came, with the thread's signal masks (this is how
    the SIGCONT handler was found taking the trap's SIGURG: docs/linux-fast-filter.md)."""
    frames = []
    for i in range(min(thread.GetNumFrames(), 12)):
        f = thread.GetFrameAtIndex(i)
        frames.append(f"{f.GetPC():#x} {f.GetModule().GetFileSpec().GetFilename()}")
    try:
        with open(f"/proc/{process.GetProcessID()}/task/{thread.GetThreadID()}/status") as status:
            masks = [line for line in status.read().splitlines() if line.startswith(("Sig", "ShdPnd"))]
    except OSError as e:
        masks = [str(e)]
    _trace(f"foreign SIGURG {thread.GetThreadID()} {masks} {frames}")


def _trace(line: str) -> None:
    """Debugging aid: PYDBGAUTO_AGENT_TRACE=<file> logs every thread's stop reason and each command's
    seconds, each line after the monotonic clock."""
    if _TRACE:
        with open(_TRACE, "a") as f:
            f.write(f"{time.monotonic():.4f} " + line + "\n")


def _anonymous_code(pid: int) -> set:
    """(start, end) of the process's anonymous executable mappings: lldb's expression code memory."""
    regions = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 5 and parts[1][2] == "x":
                    start, end = (int(x, 16) for x in parts[0].split("-"))
                    regions.add((start, end))
    except OSError:
        pass
    return regions


def _legacy_eh_requested(pid: int) -> bool:
    """.NET 9 can be told to keep the old EH; then DispatchEx exists but is never called."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
    except OSError:
        return False
    return any(
        e in (b"DOTNET_LegacyExceptionHandling=1", b"COMPlus_LegacyExceptionHandling=1") for e in environ
    )


def _runtime_version(directory: Optional[str]) -> Optional[str]:
    if not directory:
        return None
    m = re.search(r"Microsoft\.NETCore\.App/(\d+\.\d+\.\d+[^/]*)$", directory)
    if m:
        return m.group(1)
    try:  # self-contained: the deps file names the runtime pack
        for name in os.listdir(directory):
            if name.endswith(".deps.json"):
                with open(os.path.join(directory, name), encoding="utf-8") as f:
                    m = re.search(r"Microsoft\.NETCore\.App\.Runtime\.[\w-]+/(\d+\.\d+\.\d+[^\"]*)", f.read())
                if m:
                    return m.group(1)
    except OSError:
        pass
    return None


def _thread_stops(process: "lldb.SBProcess") -> List[Tuple[int, bool]]:
    """(tid, stopped by a breakpoint or a step) of each thread, for the guardian's stop guard."""
    trapped = (lldb.eStopReasonBreakpoint, lldb.eStopReasonTrace, lldb.eStopReasonPlanComplete)
    return [(t.GetThreadID(), t.GetStopReason() in trapped) for t in process]


def _gp_registers(thread: "lldb.SBThread") -> Dict[str, int]:
    """The general-purpose registers of a thread's innermost frame, as NT_PRSTATUS wants them."""
    frame = thread.GetFrameAtIndex(0)
    from pydbgauto import coredump

    values: Dict[str, int] = {}
    for name in coredump.GP_REGISTERS:
        reg = frame.FindRegister(name)
        values[name] = reg.GetValueAsUnsigned() if reg.IsValid() else 0
    return values


_AGENT: Optional[Agent] = None


def pda(debugger: "lldb.SBDebugger", command: str, result: Any, internal_dict: Any) -> None:
    global _AGENT
    if _AGENT is None:
        _AGENT = Agent(debugger)
    _AGENT.handle(command)


def _at_quit(debugger_id: int) -> None:
    """lldb's destroy callback: it runs before lldb destroys its targets (kills or detaches them)."""
    if _AGENT is not None:
        _AGENT.leave_at_quit()


def __lldb_init_module(debugger: "lldb.SBDebugger", internal_dict: Any) -> None:
    debugger.HandleCommand(f"command script add -o -f {__name__}.pda {protocol.COMMAND}")
    if hasattr(debugger, "AddDestroyCallback"):  # lldb 18+ (Debian 12's lldb-19 has it)
        debugger.AddDestroyCallback(_at_quit)
