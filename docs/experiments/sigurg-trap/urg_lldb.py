# Run by run_urg.py inside a bare lldb: attach to spin, stop at its traps for 1 s counting them, then report where they stopped.
import lldb, os, time, json
def __lldb_init_module(debugger, d):
    pid = int(os.environ["PID"]); mode = os.environ["MODE"]
    debugger.SetAsync(False)
    target = debugger.CreateTarget("")
    err = lldb.SBError()
    process = target.AttachToProcessWithID(debugger.GetListener(), pid, err)
    ci = debugger.GetCommandInterpreter(); ro = lldb.SBCommandReturnObject()
    ci.HandleCommand("process handle -s true -p true -n false SIGURG", ro)
    ci.HandleCommand("process handle -s true -p false -n false SIGTRAP", ro)
    stops, pcs, reasons = 0, {}, {}
    t = time.monotonic()
    while time.monotonic() - t < 1.0 and process.GetState() == lldb.eStateStopped:
        for th in process:
            r = th.GetStopReason()
            if r == lldb.eStopReasonSignal:
                sig = th.GetStopReasonDataAtIndex(0)
                reasons[sig] = reasons.get(sig, 0) + 1
                sym = th.GetFrameAtIndex(0).GetSymbol().GetName()
                pcs[sym] = pcs.get(sym, 0) + 1
        stops += 1
        process.Continue()
    json.dump({"stops": stops, "signals": reasons, "where": pcs}, open(os.environ["OUT"], "w"))
    # leave the target running under lldb and wait to be killed
    debugger.SetAsync(True)
    process.Continue()
    time.sleep(30)
