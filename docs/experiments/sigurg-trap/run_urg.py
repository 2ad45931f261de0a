"""Traps that survive the tracer's death? ``python3 run_urg.py urg|int3`` after ``gcc -O1 -pthread -o spin spin.c``:
attaches a bare lldb-19 to spin, counts its trap stops for 1 s, SIGKILLs lldb-server while the threads
trap, and says whether the process lives (docs/linux-fast-filter.md, "A trap that is harmless")."""
import subprocess, time, os, sys, json, signal
HERE = os.path.dirname(os.path.abspath(__file__))
mode = sys.argv[1]
app = subprocess.Popen([os.path.join(HERE, "spin"), mode], stdout=subprocess.PIPE, text=True)
pid = int(app.stdout.readline().split()[1])
out = os.path.join(HERE, f"{mode}.json")
if os.path.exists(out): os.unlink(out)
lldb = subprocess.Popen(["lldb-19", "--no-lldbinit", "--batch", "-o", f"command script import {HERE}/urg_lldb.py"], env=dict(os.environ, PID=str(pid), MODE=mode, OUT=out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not os.path.exists(out): time.sleep(0.1)
time.sleep(0.5)
print(mode, open(out).read())
# kill the tracer (lldb-server) while threads run into their traps
tracer = int([l for l in open(f"/proc/{pid}/status") if l.startswith("TracerPid")][0].split()[1])
print("tracer", tracer, open(f"/proc/{tracer}/comm").read().strip())
os.kill(tracer, signal.SIGKILL)
lldb.kill()
time.sleep(2)
status = app.poll()
print(mode, "after the tracer's death:", "alive" if status is None else f"dead, status {status}", "; state", open(f"/proc/{pid}/stat").read().split()[2] if status is None else "")
if status is None:
    app.send_signal(signal.SIGCONT); time.sleep(1.5)
    status = app.poll()
    print(mode, "1.5 s after a SIGCONT:", "alive" if status is None else f"dead, status {status}")
    app.kill()
