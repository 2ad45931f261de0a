"""A verdict pipe and the debugger's death: ``python3 death_verdict.py`` after building throws. Runs the
pipe mode under lldb-19 (verdict_lldb.py), SIGKILLs lldb-server and lldb as the threads ask, and says
whether the program lives and goes on throwing (its reads see end-of-file: no one is left to answer)."""
import os, signal, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
work = tempfile.mkdtemp()
env = dict(os.environ, SOCK=f"{work}/sock", WAIT_TRACED="1")
app = subprocess.Popen([os.path.join(HERE, "throws"), "pipe", "4", "8"], stdout=subprocess.PIPE, text=True, env=env)
pid = int(app.stdout.readline().split()[1])
lldb = subprocess.Popen(
    ["lldb-19", "--no-lldbinit", "--batch", "-o", f"command script import {HERE}/verdict_lldb.py"],
    env=dict(env, PID=str(pid), MODE="pipe", OUT=f"{work}/out.json", SECONDS="30"),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
print(app.stdout.readline().strip(), "(second 1)")
print(app.stdout.readline().strip(), "(second 2)")
tracer = int([l for l in open(f"/proc/{pid}/status") if l.startswith("TracerPid")][0].split()[1])
print("killing", tracer, open(f"/proc/{tracer}/comm").read().strip(), "and lldb", lldb.pid)
os.kill(tracer, signal.SIGKILL)
lldb.kill()
for line in app.stdout:
    print(line.strip())
print("exit status", app.wait())
