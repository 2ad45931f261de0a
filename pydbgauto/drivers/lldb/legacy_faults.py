"""First-chance events for hardware faults on .NET 8 (legacy exception handling), inside lldb.

On .NET 8 a managed ``throw`` ends in a C++ throw (the agent stops at ``__cxa_rethrow``), but a
hardware fault that the runtime turns into a managed exception (a null dereference ->
NullReferenceException, an integer division by zero -> DivideByZeroException, ``int.MinValue / -1``
-> OverflowException) raises no C++ exception at all. This module gives one first-chance event per
such fault, at a stop where a bare ``pe`` on the faulting thread shows the new exception and
``clrstack`` shows ``[FaultingExceptionFrame]`` and then the faulting method on top.

How (docs/linux-net8-faults.md has the experiments):

1. At arming, one expression asks the target for its SIGSEGV and SIGFPE handlers (``sigaction``);
   both are in libcoreclr. Breakpoints go on their first instructions. The signals themselves keep
   passing through lldb silently: a thread is never left in lldb at a *signal* stop, because lldb-server
   allocates memory for expressions (``_M``) by running a syscall on the current thread, and a thread
   held at its SIGSEGV stop then gets the signal re-sent with a made-up ``siginfo`` (``si_addr`` = the
   tracer's pid): .NET 8 takes that for an access violation at a non-null address and fails fast.
   At the handler's entry ``rsi`` is the ``siginfo_t`` (``si_code`` +8, ``si_addr`` +16) and ``rdx``
   the ``ucontext_t`` (faulting ``rip`` at +168). Nothing is reported yet: the object does not exist.
2. The handler calls ``ProcessCLRException`` (the legacy EH's per-frame personality routine) for the
   faulting frame, first pass. libcoreclr is stripped, but the runtime writes ``mov rax,
   ProcessCLRException; jmp rax`` (``48 B8 <imm64> FF E0``) as the first bytes of each JIT code heap
   (the heap's "CLR personality routine" stub). The module finds that stub once and breaks on its
   target while a faulting thread is pending.
3. At the entry, the exception record (``rdi``) must carry the fault's code (0xC0000005 for SIGSEGV,
   0xC0000094/0xC0000095 for SIGFPE); then the return address (``[rsp]``) gets a breakpoint.
4. When ``ProcessCLRException`` returns to it on the same thread and stack depth (``rsp`` = entry
   ``rsp`` + 8, so a nested dispatch inside the exception's constructor does not count), the
   runtime has created the exception object and made it the thread's current exception: the
   module runs one bare ``pe`` and returns the event.

Cost per fault: three stops (handler, entry, return) and one SOS ``pe``.

Wiring (the agent object needs ``.target``, ``.process``, ``.hc(command)``, ``._read``, ``._u64``)::

    faults = LegacyFaults()
    faults.arm(agent)                       # once the runtime is up (one expression runs)
    ...for every stopped thread at a stop:
    event = faults.on_stop(agent, thread)   # a first-chance event dict, or None
    # faults.claims(thread) tells whether a stop without an event was one of this module's
    ...at a SIGABRT stop:
    details = faults.abort_details(thread)  # what the thread faulted on, if it never got an event
    ...
    faults.disarm(agent)                    # before detaching
"""

from __future__ import annotations

import os
import re
import struct
import sys
import time
from typing import Any, Dict, Optional

import lldb  # type: ignore[import-not-found]

# Imported by lldb (through the agent or alone): make the pydbgauto package importable for the parser.
_PACKAGE_PARENT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
if _PACKAGE_PARENT not in sys.path:
    sys.path.insert(0, _PACKAGE_PARENT)

from pydbgauto.drivers.lldb import protocol, scan_cache  # noqa: E402
from pydbgauto.sos.pe import parse_pe  # noqa: E402

SIGFPE = 8
SIGSEGV = 11
FAULT_SIGNALS = (SIGSEGV, SIGFPE)
STATUS_ACCESS_VIOLATION = 0xC0000005
STATUS_INTEGER_DIVIDE_BY_ZERO = 0xC0000094
STATUS_INTEGER_OVERFLOW = 0xC0000095
EXPECTED_CODES = {
    SIGSEGV: (STATUS_ACCESS_VIOLATION,),
    SIGFPE: (STATUS_INTEGER_DIVIDE_BY_ZERO, STATUS_INTEGER_OVERFLOW),
}
CODE_NAMES = {
    STATUS_ACCESS_VIOLATION: "access violation",
    STATUS_INTEGER_DIVIDE_BY_ZERO: "integer division by zero",
    STATUS_INTEGER_OVERFLOW: "integer overflow",
}
# mov rax, imm64; jmp rax: the runtime's jump to ProcessCLRException at the start of a JIT code heap
_PERSONALITY_STUB = re.compile(rb"\x48\xb8(.{8})\xff\xe0", re.S)
_FAULT_ADDRESS = re.compile(r"fault address:\s*(0x[0-9a-fA-F]+)")
_POINTER = re.compile(r"=\s*(0x[0-9a-fA-F]+)")
UCONTEXT_RIP = 40 + 16 * 8  # uc_flags, uc_link, uc_stack (24 bytes), then mcontext gregs[REG_RIP=16]
# The handler a signal runs: sa_handler/sa_sigaction is the first field of glibc's struct sigaction.
# Only this thread runs (-a false), with a time limit, as the agent's own mprotect expression.
_HANDLER_EXPRESSION = (
    "expr -a false -i true -u true -t 5000000 -- char pda_sa[256]; "
    "((int (*)(int, void*, void*))sigaction)({signal}, (void*)0, (void*)pda_sa); *(void**)pda_sa"
)


_TRACE = os.environ.get("PYDBGAUTO_FAULTS_TRACE")


def _trace(line: str) -> None:
    """Debugging aid: PYDBGAUTO_FAULTS_TRACE=<file> logs each step of each fault."""
    if _TRACE:
        with open(_TRACE, "a") as f:
            f.write(f"{time.monotonic():.4f} {line}\n")


class Fault:
    """A hardware fault on one thread, followed until the runtime has made it an exception."""

    def __init__(self, thread_id: int, signal: int, pc: int, fault_address: Optional[int]) -> None:
        self.thread_id = thread_id
        self.signal = signal
        self.pc = pc
        self.fault_address = fault_address
        self.started = time.monotonic()
        self.code: Optional[int] = None  # the exception record's code, once the dispatcher is entered
        self.return_address: Optional[int] = None
        self.return_sp: Optional[int] = None

    def event(self, address: Optional[int], note: str = "") -> Dict[str, Any]:
        return {
            "kind": protocol.EVENT_FIRST_CHANCE,
            "thread_id": self.thread_id,
            "exception_address": address,
            "description": self.describe() + note,
            "signal": self.signal,
            "fault_pc": self.pc,
            "fault_address": self.fault_address,
        }

    def describe(self) -> str:
        name = "SIGSEGV" if self.signal == SIGSEGV else "SIGFPE"
        what = CODE_NAMES.get(self.code or 0, name)
        where = f" (fault address {self.fault_address:#x})" if self.fault_address is not None else ""
        return f"hardware fault: {what} at {self.pc:#x}{where}"


class LegacyFaults:
    def __init__(self) -> None:
        self.armed = False
        self.personality: Optional[int] = None  # ProcessCLRException's address, once found
        self.personality_searched = False
        self.handlers: Dict[int, int] = {}  # signal -> the runtime's handler address
        self.handler_bps: Dict[int, int] = {}  # breakpoint id -> handler address
        self.signal_stops = False  # fallback when the handlers are unknown: stop at the signals
        self.entry_bp: Optional[int] = None
        self.return_bps: Dict[int, int] = {}  # return address -> breakpoint id
        self.pending: Dict[int, Fault] = {}  # thread id -> fault, before the dispatcher's entry
        self.entered: Dict[int, Fault] = {}  # thread id -> fault, waiting for the dispatcher's return
        self.unfinished: Dict[int, Fault] = {}  # faults that never became an exception (see abort_details)
        self._claimed: set = set()  # (thread id, stop id) of the stops this module handled
        self.stats: Dict[str, Any] = {
            "faults": 0,
            "events": 0,
            "entry_stops": 0,
            "return_stops": 0,
            "other_thread_stops": 0,  # other threads' exceptions passing the breakpoints meanwhile
            "not_dispatched": 0,  # faults whose thread next entered the dispatcher with another code
            "seconds_signal_to_event": 0.0,
        }

    # ----- arming ---------------------------------------------------------------------------------

    def arm(self, agent: Any) -> Dict[str, Any]:
        """Break on the runtime's SIGSEGV and SIGFPE handlers (the signals keep passing silently).

        Falls back to stopping at the signals themselves when the handlers cannot be asked for; that
        mode breaks a fault if an expression is evaluated while its thread is held at the signal.
        """
        target = agent.target
        by_address: Dict[int, int] = {}  # one breakpoint per handler (the signal is in rdi there)
        # PYDBGAUTO_FAULTS_SIGNAL_STOPS=1 forces the fallback (to show its hazard in experiments)
        for signal in () if os.environ.get("PYDBGAUTO_FAULTS_SIGNAL_STOPS") else FAULT_SIGNALS:
            address = _handler_of(agent, signal)
            if address is None:
                continue
            if address not in by_address:
                bp = target.BreakpointCreateByAddress(address)
                if not bp.GetNumResolvedLocations():
                    target.BreakpointDelete(bp.GetID())
                    continue
                by_address[address] = bp.GetID()
            self.handlers[signal] = address
        self.handler_bps = {bp_id: address for address, bp_id in by_address.items()}
        missing = [s for s in FAULT_SIGNALS if s not in self.handlers]
        if missing:
            self.signal_stops = True
            names = " ".join("SIGSEGV" if s == SIGSEGV else "SIGFPE" for s in missing)
            agent.hc(f"process handle -p true -s true -n false {names}")
        self.armed = True
        return {
            "faults": "signal-stops" if self.signal_stops else "runtime-handlers",
            "handlers": {str(k): v for k, v in self.handlers.items()},
        }

    def disarm(self, agent: Any) -> None:
        """Remove every breakpoint of the module (and stop stopping at the signals, in the fallback)."""
        target = agent.target
        for bp_id in [self.entry_bp] + list(self.return_bps.values()) + list(self.handler_bps):
            if bp_id is not None and target is not None:
                target.BreakpointDelete(bp_id)
        self.entry_bp, self.return_bps, self.handler_bps = None, {}, {}
        self.pending, self.entered = {}, {}
        if self.signal_stops and agent.process is not None and agent.process.IsValid():
            agent.hc("process handle -p true -s false -n false SIGSEGV SIGFPE")
        self.signal_stops = False
        self.armed = False

    # ----- the stops --------------------------------------------------------------------------------

    def on_stop(self, agent: Any, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        """Handle one stopped thread; return a first-chance event when a fault's exception is ready."""
        if not self.armed:
            return None
        reason = thread.GetStopReason()
        if (
            self.signal_stops
            and reason == lldb.eStopReasonSignal
            and thread.GetStopReasonDataAtIndex(0) in FAULT_SIGNALS
        ):
            self._claim(agent, thread)
            return self._on_signal_stop(agent, thread)
        if reason != lldb.eStopReasonBreakpoint:
            return None
        bp_id = thread.GetStopReasonDataAtIndex(0)
        event = None
        if bp_id in self.handler_bps:
            self._claim(agent, thread)
            event = self._on_handler(agent, thread)
        elif self.entry_bp is not None and bp_id == self.entry_bp:
            self._claim(agent, thread)
            self._on_entry(agent, thread)
        elif bp_id in self.return_bps.values():
            self._claim(agent, thread)
            event = self._on_return(agent, thread)
        else:
            return None
        self._sync_breakpoints(agent)
        return event

    def claims(self, agent: Any, thread: "lldb.SBThread") -> bool:
        """True when the thread's current stop was handled by this module (report nothing else for it)."""
        return (thread.GetThreadID(), agent.process.GetStopID()) in self._claimed

    def abort_details(self, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        """At SIGABRT: the fault this thread took that never became a first-chance exception.

        An access violation in managed code at a non-null address is fatal on .NET 8 (the runtime
        prints "Fatal error. System.AccessViolationException" and aborts; a bare ``pe`` then shows a
        System.ExecutionEngineException). This names the fault for the second-chance event.
        """
        tid = thread.GetThreadID()
        fault = self.entered.get(tid) or self.pending.get(tid) or self.unfinished.get(tid)
        if fault is None:
            return None
        result = {
            "signal": fault.signal,
            "fault_pc": fault.pc,
            "fault_address": fault.fault_address,
            "code": fault.code,
            "description": fault.describe() + ", which the runtime did not turn into a catchable exception",
        }
        if fault.code == STATUS_ACCESS_VIOLATION:
            result["exception_type"] = "System.AccessViolationException"
        return result

    # ----- internals ----------------------------------------------------------------------------------

    def _claim(self, agent: Any, thread: "lldb.SBThread") -> None:
        stop_id = agent.process.GetStopID()
        self._claimed = {c for c in self._claimed if c[1] == stop_id}
        self._claimed.add((thread.GetThreadID(), stop_id))

    def _on_handler(self, agent: Any, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        """The runtime's signal handler, first instruction: the fault as the kernel delivered it."""
        frame = thread.GetFrameAtIndex(0)
        signal = frame.FindRegister("rdi").GetValueAsUnsigned()
        siginfo = frame.FindRegister("rsi").GetValueAsUnsigned()
        ucontext = frame.FindRegister("rdx").GetValueAsUnsigned()
        try:
            si_addr = agent._u64(siginfo + 16)
            pc = agent._u64(ucontext + UCONTEXT_RIP)
        except Exception:
            return None
        if signal not in FAULT_SIGNALS:
            return None
        return self._on_fault(
            agent, Fault(thread.GetThreadID(), signal, pc, si_addr if signal == SIGSEGV else None)
        )

    def _on_signal_stop(self, agent: Any, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        """The fallback: lldb stopped at the signal itself (the handler did not run yet)."""
        match = _FAULT_ADDRESS.search(thread.GetStopDescription(256) or "")
        fault = Fault(
            thread.GetThreadID(),
            thread.GetStopReasonDataAtIndex(0),
            thread.GetFrameAtIndex(0).GetPC(),
            int(match.group(1), 16) if match else None,
        )
        return self._on_fault(agent, fault)

    def _on_fault(self, agent: Any, fault: Fault) -> Optional[Dict[str, Any]]:
        tid = fault.thread_id
        _trace(f"fault tid={tid} signal={fault.signal} pc={fault.pc:#x} addr={fault.fault_address}")
        self.stats["faults"] += 1
        self.entered.pop(tid, None)
        self.unfinished.pop(tid, None)
        if self._find_personality(agent) is None:
            # No JIT code heap to find the dispatcher from: report the fault itself, without an object.
            self.unfinished[tid] = fault
            self.stats["events_without_object"] = self.stats.get("events_without_object", 0) + 1
            return fault.event(None, "; the runtime's exception dispatcher was not found: no object yet")
        self.pending[tid] = fault
        self._sync_breakpoints(agent)
        return None

    def _on_entry(self, agent: Any, thread: "lldb.SBThread") -> None:
        tid = thread.GetThreadID()
        fault = self.pending.get(tid)
        if fault is None:
            self.stats["other_thread_stops"] += 1
            return
        self.stats["entry_stops"] += 1
        frame = thread.GetFrameAtIndex(0)
        record = frame.FindRegister("rdi").GetValueAsUnsigned()
        sp = frame.FindRegister("rsp").GetValueAsUnsigned()
        try:
            code = struct.unpack("<I", agent._read(record, 4))[0]
            return_address = agent._u64(sp)
            if _TRACE:
                _trace(f"entry tid={tid} record={agent._read(record, 48).hex()}")
        except Exception:
            return  # unreadable: wait for the next entry on this thread
        del self.pending[tid]
        if code not in EXPECTED_CODES[fault.signal]:
            # The thread dispatches some other exception first: the fault was handled without the
            # legacy dispatcher (a native fault the runtime absorbed, or a fatal one).
            fault.code = code
            self.unfinished[tid] = fault
            self.stats["not_dispatched"] += 1
            return
        fault.code = code
        fault.return_address = return_address
        fault.return_sp = sp + 8
        self.entered[tid] = fault
        self.unfinished[tid] = fault  # until the return: an access violation fails fast inside

    def _on_return(self, agent: Any, thread: "lldb.SBThread") -> Optional[Dict[str, Any]]:
        tid = thread.GetThreadID()
        fault = self.entered.get(tid)
        frame = thread.GetFrameAtIndex(0)
        if (
            fault is None
            or frame.GetPC() != fault.return_address
            or frame.FindRegister("rsp").GetValueAsUnsigned() != fault.return_sp
        ):
            self.stats["other_thread_stops"] += 1  # another thread, or a nested dispatch on this one
            return None
        self.stats["return_stops"] += 1
        del self.entered[tid]
        self.unfinished.pop(tid, None)
        agent.process.SetSelectedThread(thread)
        address = _current_exception(agent)
        self.stats["events"] += 1
        self.stats["seconds_signal_to_event"] += time.monotonic() - fault.started
        return fault.event(address)

    def _sync_breakpoints(self, agent: Any) -> None:
        """One breakpoint per address, enabled only while a thread needs it.

        Two breakpoints on one address where threads are stopped make lldb lose hits (docs/linux.md),
        so the entry breakpoint is made once and toggled, and each return address gets one.
        """
        target = agent.target
        if self.personality is not None:
            if self.entry_bp is None and self.pending:
                self.entry_bp = target.BreakpointCreateByAddress(self.personality).GetID()
            if self.entry_bp is not None:
                bp = target.FindBreakpointByID(self.entry_bp)
                if bp.IsEnabled() != bool(self.pending):
                    bp.SetEnabled(bool(self.pending))
        wanted = {f.return_address for f in self.entered.values()}
        for address in wanted:
            if address is not None and address not in self.return_bps:
                self.return_bps[address] = target.BreakpointCreateByAddress(address).GetID()
        for address, bp_id in self.return_bps.items():
            bp = target.FindBreakpointByID(bp_id)
            if bp.IsEnabled() != (address in wanted):
                bp.SetEnabled(address in wanted)

    def _find_personality(self, agent: Any) -> Optional[int]:
        """ProcessCLRException: the target of the jump stub that begins each JIT code heap."""
        if self.personality is not None or self.personality_searched:
            return self.personality
        self.personality_searched = True
        candidates = find_personality_routines(agent.target, agent.process)
        if candidates:
            self.personality = max(candidates, key=lambda a: candidates[a])
        return self.personality


def find_personality_routines(target: "lldb.SBTarget", process: "lldb.SBProcess") -> Dict[int, int]:
    """Targets (with counts) of ``mov rax, imm64; jmp rax`` at the start of executable regions.

    Only targets at the start of a function in libcoreclr.so count (lldb knows function starts of
    the stripped library from its unwind tables).
    """
    coreclr = _coreclr(target)
    if coreclr is None:
        return {}
    found: Dict[int, int] = {}
    regions = process.GetMemoryRegions()
    for i in range(regions.GetSize()):
        region = lldb.SBMemoryRegionInfo()
        regions.GetMemoryRegionAtIndex(i, region)
        if not region.IsExecutable() or not region.IsReadable():
            continue
        error = lldb.SBError()
        head = process.ReadMemory(region.GetRegionBase(), 12, error)
        if not error.Success() or head is None:
            continue
        match = _PERSONALITY_STUB.match(bytes(head))
        if not match:
            continue
        address = struct.unpack("<Q", match.group(1))[0]
        resolved = target.ResolveLoadAddress(address)
        if resolved.GetModule() != coreclr:
            continue
        symbol = resolved.GetSymbol()
        if symbol.IsValid() and symbol.GetStartAddress().GetLoadAddress(target) != address:
            continue
        found[address] = found.get(address, 0) + 1
    return found


def _handler_of(agent: Any, signal: int) -> Optional[int]:
    """The address of the target's handler for a signal, if it is a function in libcoreclr.so.

    Asking costs an expression (lldb compiles it: ~70 ms for the first, ~27 ms the next, most of .NET 8's
    arming), for an answer that is a fixed place in the runtime's file: the runtime installs its own
    handler at start-up. So a handler found is kept per unchanged libcoreclr.so (scan_cache.py) as a file
    address, and later attaches break there without asking. Where the target's handler is another's, the
    runtime's one runs only if that handler chains to it, so breaking at the runtime's is right either
    way. "Not the runtime's" is not kept: the next target of that file is asked again."""
    coreclr = _coreclr(agent.target)
    path = coreclr.GetFileSpec().fullpath if coreclr is not None else None
    if coreclr is None or not path:
        return _asked_handler(agent, signal)
    asked: Dict[str, Optional[int]] = {}

    def ask() -> Optional[int]:
        asked["load"] = _asked_handler(agent, signal)
        if asked["load"] is None:
            return None
        return int(agent.target.ResolveLoadAddress(asked["load"]).GetFileAddress())

    file_address = scan_cache.remembered(path, f"signal handler {signal}", ask, keep_none=False)
    if "load" in asked or file_address is None:
        return asked.get("load")
    address = coreclr.ResolveFileAddress(file_address)
    section = address.GetSection()
    if not section.IsValid() or not (section.GetPermissions() & lldb.ePermissionsExecutable):
        return _asked_handler(agent, signal)  # the kept address is not code: ask as before
    load = address.GetLoadAddress(agent.target)
    return int(load) if load != lldb.LLDB_INVALID_ADDRESS else _asked_handler(agent, signal)


def _asked_handler(agent: Any, signal: int) -> Optional[int]:
    """The handler by an expression in the target (sigaction with no new action)."""
    text = agent.hc(_HANDLER_EXPRESSION.format(signal=signal))
    match = _POINTER.search(text)
    if not match:
        _trace(f"no handler for {signal}: {text.strip()}")
        return None
    address = int(match.group(1), 16)
    module = agent.target.ResolveLoadAddress(address).GetModule()
    runtime = _coreclr(agent.target)
    if (
        not module.IsValid()
        or runtime is None
        or module.GetFileSpec().fullpath != runtime.GetFileSpec().fullpath
    ):
        _trace(f"handler of {signal} at {address:#x} is not the runtime's")
        return None
    return address


def _coreclr(target: "lldb.SBTarget") -> Optional["lldb.SBModule"]:
    """libcoreclr.so (or a single-file app's executable, which holds the runtime)."""
    from pydbgauto.drivers.lldb.runtime_module import runtime_module

    return runtime_module(target)


def _current_exception(agent: Any) -> Optional[int]:
    """The selected thread's current exception by a bare ``pe``; None if SOS shows none."""
    try:
        exception = parse_pe(agent.hc("pe"))
    except Exception:  # SOS could not read it: the event still comes, without the object
        return None
    return exception.address if exception else None
