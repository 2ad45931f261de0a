"""Runs inside a bare lldb (``command script import``), no pydbgauto agent: the debugger's floor.

Launches ``FLOOR_ARGV`` (JSON) with its stdout to ``FLOOR_STDOUT``, stops once the runtime is up, puts one
auto-continuing breakpoint where pydbgauto's agent breaks for a throw (.NET 9+: libcoreclr's
AppendExceptionStackFrame, found by its QCall name as the agent does; .NET 8: ``__cxa_rethrow``) and runs to
the end. lldb stops and resumes the target itself at each hit (the breakpoint's auto-continue): no Python
runs per throw. Writes the hit count to ``FLOOR_RESULT``.
"""

from __future__ import annotations

import json
import os
import sys

import lldb  # type: ignore[import-not-found]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from pydbgauto.drivers.lldb import qcalls  # noqa: E402


def __lldb_init_module(debugger: "lldb.SBDebugger", internal_dict: object) -> None:
    argv = json.loads(os.environ["FLOOR_ARGV"])
    debugger.SetAsync(False)
    error = lldb.SBError()
    target = debugger.CreateTarget(argv[0], None, None, True, error)
    target.BreakpointCreateByName("coreclr_execute_assembly")
    info = lldb.SBLaunchInfo(argv[1:])
    info.AddOpenFileAction(1, os.environ["FLOOR_STDOUT"], False, True)
    info.AddOpenFileAction(0, "/dev/null", True, False)
    process = target.Launch(info, error)
    ci = debugger.GetCommandInterpreter()
    ci.HandleCommand(
        "process handle -p true -s false -n false SIGSEGV SIGFPE SIGBUS SIGUSR1 SIGCHLD SIGPIPE",
        lldb.SBCommandReturnObject(),
    )
    target.DeleteAllBreakpoints()
    coreclr = next(m for m in target.module_iter() if m.GetFileSpec().GetFilename() == "libcoreclr.so")
    file_address = qcalls.find_qcall(coreclr.GetFileSpec().fullpath, "AppendExceptionStackFrame")
    if file_address is not None:
        where = "AppendExceptionStackFrame"
        bp = target.BreakpointCreateBySBAddress(coreclr.ResolveFileAddress(file_address))
    else:
        where = "__cxa_rethrow"
        bp = target.BreakpointCreateByName("__cxa_rethrow", "libstdc++.so.6")
    bp.SetAutoContinue(True)
    process.Continue()
    with open(os.environ["FLOOR_RESULT"], "w") as f:
        json.dump({"where": where, "hits": bp.GetHitCount(), "state": process.GetState()}, f)
