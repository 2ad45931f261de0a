"""Runs inside lldb: the real agent in its .NET 8 mode, its stops looped here to expose legacy_faults.

    PDA_FAULTS_ARGV='["app", "scenario", ...]' PDA_FAULTS_SOS=<libsosplugin.so> PDA_FAULTS_STDOUT=<file> \\
        lldb-19 --no-lldbinit -b -o "command script import tests/integration/net8_faults_harness.py"

``PDA_FAULTS_PID=<pid>`` attaches instead of launching; ``PDA_FAULTS_DUMP=<core>`` writes a core at the
first fault event; ``PDA_FAULTS_AT_STOP=<command>`` runs a command at every stop before the module
sees it; ``PDA_FAULTS_QUIET=1`` skips the checks at each event (for timing); ``PDA_FAULTS_TIMEOUT``
(s) bounds the run.

Prints one ``PDA-FAULTS {json}`` line per event (first-chance, second-chance, exit) and a final
``PDA-FAULTS {"kind": "stats", ...}``. Each event carries what the stop shows: the bare ``pe`` on the
event's thread, ``pe <address>``, and the top managed frames of ``clrstack``. The loop is what the
agent's ``_collect_events`` does plus the few lines that wire the module in.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Dict, Optional

import lldb  # type: ignore[import-not-found]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pydbgauto.drivers.lldb import agent as lldb_agent  # noqa: E402
from pydbgauto.drivers.lldb.legacy_faults import LegacyFaults  # noqa: E402
from pydbgauto.sos.clrstack import parse_clrstack  # noqa: E402
from pydbgauto.sos.pe import parse_pe  # noqa: E402


def emit(record: Dict[str, Any]) -> None:
    sys.stdout.write("PDA-FAULTS " + json.dumps(record) + "\n")
    sys.stdout.flush()


def shown(agent: Any, thread: "lldb.SBThread", address: Optional[int]) -> Dict[str, Any]:
    """What a user sees at the stop on the event's thread."""
    agent.process.SetSelectedThread(thread)
    seen: Dict[str, Any] = {}
    started = time.monotonic()
    bare = parse_pe(agent.hc("pe"))
    seen["bare_pe"] = {"address": bare.address, "type": bare.type} if bare else None
    if address:
        exception = parse_pe(agent.hc(f"pe {address:x}"))
        seen["pe"] = {"address": exception.address, "type": exception.type} if exception else None
    stack = parse_clrstack(agent.hc("clrstack"))
    seen["frames"] = [f.method or f.call_site for f in stack.frames if f.kind == "managed"][:4]
    seen["runtime_frames"] = [f.frame_type for f in stack.frames[:2] if f.kind == "runtime"]
    seen["inspect_seconds"] = round(time.monotonic() - started, 4)
    return seen


def _children(pid: int) -> list:
    """Child processes of pid (lldb's lldb-server), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def run(debugger: "lldb.SBDebugger") -> None:
    argv = json.loads(os.environ["PDA_FAULTS_ARGV"])
    deadline = time.monotonic() + float(os.environ.get("PDA_FAULTS_TIMEOUT", "120"))
    os.environ["PYDBGAUTO_REPLY_FD"] = str(os.open(os.devnull, os.O_WRONLY))
    agent = lldb_agent.Agent(debugger)
    agent.op_init(os.environ["PDA_FAULTS_SOS"])
    stdout = os.environ.get("PDA_FAULTS_STDOUT", os.devnull)
    pid = os.environ.get("PDA_FAULTS_PID")
    if pid:  # attach to a running (warm) target instead
        agent.op_attach(int(pid))
    else:
        agent.op_launch(argv, {}, stdout, stdout + ".err" if stdout != os.devnull else os.devnull, None, None)
    dump = os.environ.get("PDA_FAULTS_DUMP")  # write a core at the first fault event
    at_stop = os.environ.get("PDA_FAULTS_AT_STOP")
    quiet = bool(os.environ.get("PDA_FAULTS_QUIET"))  # no SOS commands beyond the module's own (timing)
    armed = agent.op_arm()
    # The agent arms legacy_faults itself on .NET 8 (op_arm); the harness drives that instance.
    faults: LegacyFaults = agent.faults
    faults_armed = agent.fault_arming
    emit(
        {
            "kind": "armed",
            "mechanism": armed["mechanism"],
            "runtime": agent.runtime,
            "faults": faults_armed,
            "pid": agent.process.GetProcessID(),
            "lldb_server": _children(os.getpid()),
        }
    )
    process = agent.process
    stops = 0
    started = time.monotonic()

    def watchdog() -> None:
        while process.GetState() != lldb.eStateExited and time.monotonic() < deadline:
            time.sleep(0.2)
        if process.GetState() != lldb.eStateExited:
            process.SendAsyncInterrupt()

    threading.Thread(target=watchdog, daemon=True).start()
    while True:
        process.Continue()
        state = process.GetState()
        if state == lldb.eStateExited:
            emit(
                {
                    "kind": "exit",
                    "exit_status": process.GetExitStatus(),
                    "description": process.GetExitDescription() or "",
                }
            )
            break
        if time.monotonic() >= deadline:
            emit({"kind": "timeout"})
            process.Kill()
            break
        stops += 1
        for thread in process:
            reason = thread.GetStopReason()
            event = None
            if (
                reason == lldb.eStopReasonBreakpoint
                and thread.GetStopReasonDataAtIndex(0) == agent.rethrow_bp
            ):
                event = agent._first_chance_legacy(thread)
            elif (
                reason == lldb.eStopReasonSignal and thread.GetStopReasonDataAtIndex(0) == lldb_agent.SIGABRT
            ):
                event = {
                    "kind": "second-chance",
                    "thread_id": thread.GetThreadID(),
                    "exception_address": None,
                    "description": "SIGABRT: the runtime is aborting",
                }
                details = faults.abort_details(thread)  # wiring, 3 of 4: name the fault at the abort
                if details:
                    event["fault"] = details
            else:
                if at_stop and reason in (lldb.eStopReasonSignal, lldb.eStopReasonBreakpoint):
                    agent.process.SetSelectedThread(thread)  # a command (an expression) at every stop
                    agent.hc(at_stop)
                event = faults.on_stop(agent, thread)  # wiring, 2 of 4: every other stopped thread
            if event is None:
                continue
            event["seconds"] = round(time.monotonic() - started, 4)
            if not quiet:
                event.update(shown(agent, thread, event.get("exception_address")))
            if dump and "signal" in event:
                event["dump"] = agent.op_dump(dump)
                dump = None
            emit(event)
    faults.disarm(agent)  # (before a detach)
    emit(
        {
            "kind": "stats",
            "stops": stops,
            "seconds": round(time.monotonic() - started, 3),
            "faults": faults.stats,
            "personality": faults.personality,
        }
    )


def __lldb_init_module(debugger: "lldb.SBDebugger", internal_dict: Any) -> None:
    try:
        run(debugger)
    except Exception:
        emit({"kind": "error", "traceback": traceback.format_exc()})
    sys.stdout.flush()
