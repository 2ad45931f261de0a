"""How much does a verdict cost a throw? ``python3 run_verdict.py`` after
``gcc -O1 -pthread -o throws throws.c`` (or THROWS=<path>): the throw rate of throws.c unwatched, with
its SIGURG trap stopped and continued by a bare lldb-19 at every throw, and with a socket round trip to a
thread of lldb's Python at every throw while lldb keeps the process traced and running
(docs/linux-fast-filter.md, "A verdict without a stop")."""
import json, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
THROWS = os.environ.get("THROWS", os.path.join(HERE, "throws"))
THREADS, SECONDS = sys.argv[1] if len(sys.argv) > 1 else "4", 4


def rate(mode, under_lldb, yes_every=0):
    work = tempfile.mkdtemp()
    env = dict(os.environ, SOCK=f"{work}/sock")
    if under_lldb:
        env["WAIT_TRACED"] = "1"
    app = subprocess.Popen([THROWS, mode, THREADS, "60"], stdout=subprocess.PIPE, text=True, env=env)
    pid = int(app.stdout.readline().split()[1])
    out = f"{work}/out.json"
    if under_lldb:
        lldb = subprocess.Popen(
            ["lldb-19", "--no-lldbinit", "--batch", "-o", f"command script import {HERE}/verdict_lldb.py"],
            env=dict(env, PID=str(pid), MODE=mode, OUT=out, SECONDS=str(SECONDS), YES_EVERY=str(yes_every)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    if under_lldb:  # the count lldb made in its window
        lldb.wait(timeout=60)
        time.sleep(1.1)  # one more line from the program after the detach
        app.kill()
        result = json.load(open(out))
        result["program"] = app.stdout.read().strip().splitlines()[-1]
        if mode == "pipe":  # every throw asked; the matches also stopped
            return result["answered"] / result["seconds"], result
        return result["stops"] / result["seconds"], result
    samples = []
    for _ in range(SECONDS + 2):
        line = app.stdout.readline().split()
        samples.append((time.monotonic(), int(line[1])))
    app.kill()
    (t0, n0), (t1, n1) = samples[1], samples[-1]  # the first second left out (start-up)
    return (n1 - n0) / (t1 - t0), {}


for mode, under, yes_every in (("none", False, 0), ("urg", True, 0), ("pipe", True, 0), ("pipe", True, 100)):
    r, extra = rate(mode, under, yes_every)
    what = f"{mode}, every {yes_every}th a match" if yes_every else mode
    print(f"{what:24s} {'under lldb' if under else 'alone':11s} {r:12,.0f} throws/s  {extra}")
