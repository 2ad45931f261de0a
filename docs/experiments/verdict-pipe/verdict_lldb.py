# Run by run_verdict.py inside a bare lldb-19: attach to throws (PID), then for SECONDS either
#   MODE=urg:  stop at each SIGURG trap and Continue (synchronously), counting the stops, or
#   MODE=pipe: answer each request on the unix socket SOCK from a thread of lldb's Python while the main thread
#              waits in a synchronous Continue (as the agent's does); a timer interrupts it at the end.
#              With YES_EVERY=n every n-th request is answered "y": the asking thread then takes its
#              SIGURG trap, a stop, and the main thread continues it (the design: ask, and stop a match).
# Writes {"stops"/"answered": n} to OUT, detaches.
import json, os, re, socket, threading, time
import lldb

NEVER = re.compile("^storm(?!:)")  # every message has the literal "storm"; the regex never matches


def serve(listener, counts, done, yes_every):
    conn, _ = listener.accept()
    while not done.is_set():
        rec = conn.recv(64)
        if not rec:
            break
        message = rec[16:].split(b"\0", 1)[0].decode()
        counts["answered"] += 1
        yes = NEVER.search(message) or (yes_every and counts["answered"] % yes_every == 0)
        conn.send(b"y" if yes else b"n")
    conn.close()


def __lldb_init_module(debugger, d):
    pid, mode, seconds = int(os.environ["PID"]), os.environ["MODE"], float(os.environ["SECONDS"])
    debugger.SetAsync(False)
    target = debugger.CreateTarget("")
    err = lldb.SBError()
    process = target.AttachToProcessWithID(debugger.GetListener(), pid, err)
    ci = debugger.GetCommandInterpreter()
    ro = lldb.SBCommandReturnObject()
    ci.HandleCommand("process handle -s true -p false -n false SIGURG", ro)
    counts = {"stops": 0, "answered": 0}
    started = time.monotonic()
    if mode == "urg":
        while time.monotonic() - started < seconds and process.GetState() == lldb.eStateStopped:
            counts["stops"] += 1
            process.Continue()
    else:
        done = threading.Event()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(os.environ["SOCK"])
        listener.listen(1)
        yes_every = int(os.environ.get("YES_EVERY") or 0)
        server = threading.Thread(target=serve, args=(listener, counts, done, yes_every))
        server.start()
        end = threading.Event()
        threading.Timer(seconds, lambda: (end.set(), process.SendAsyncInterrupt())).start()
        process.Continue()  # returns at a match's trap, or at the interrupt: the server answers meanwhile
        while not end.is_set() and process.GetState() == lldb.eStateStopped:
            counts["stops"] += 1
            process.Continue()
        counts["state"] = lldb.SBDebugger.StateAsCString(process.GetState())
        done.set()
    counts["seconds"] = time.monotonic() - started
    with open(os.environ["OUT"], "w") as f:
        json.dump(counts, f)
    process.Detach()
