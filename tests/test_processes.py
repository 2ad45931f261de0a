"""pydbgauto.processes: finding a process by the names users call it, and what /proc says about a pid.

Real /proc reads of this test's own process and of children it starts (copies of /bin/sleep under names
no other test uses, killed by their own pid).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from pydbgauto import processes
from pydbgauto.errors import (
    AlreadyTracedError,
    ConfigurationError,
    NoSuchProcessError,
    NotDotnetError,
    TargetError,
)

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def started() -> Iterator[List[subprocess.Popen]]:
    children: List[subprocess.Popen] = []
    yield children
    for child in children:
        child.kill()
        child.wait()


def _unique(prefix: str = "pdat") -> str:
    return prefix + uuid.uuid4().hex[:8]


def _sleeper(tmp_path: Path, started: List[subprocess.Popen], name: str, argv0: str = "") -> int:
    """A child running a copy of sleep called ``name`` (its comm), with ``argv0`` as argv[0]."""
    program = tmp_path / name
    if not program.exists():
        shutil.copy(SLEEP, program)
    child = subprocess.Popen([argv0 or str(program), "60"], executable=str(program))
    started.append(child)
    _wait_for_exec(child.pid, [argv0 or str(program), "60"])
    return child.pid


def _wait_for_exec(pid: int, argv: List[str]) -> None:
    """Until /proc shows the new program: Popen can return before the kernel has set the child's comm and
    argv (the close-on-exec pipe it waits on closes first), and until then the child is still "python3"."""
    want = b"".join(a.encode() + b"\0" for a in argv)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read() == want:
                return
        time.sleep(0.005)
    raise AssertionError(f"pid {pid} did not show {argv} in /proc within 10 s")


@pytest.mark.parametrize("name", ["", "a/b", "x\0y"])
def test_find_pids_refuses_what_is_not_a_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not a process name"):
        processes.find_pids(name)


def test_find_pids_by_name_and_with_a_windows_suffix(tmp_path: Path, started: List[subprocess.Popen]) -> None:
    name = _unique()
    pid = _sleeper(tmp_path, started, name)
    assert processes.find_pids(name) == [pid]
    assert processes.find_pids(name + ".exe") == [pid]
    assert processes.find_pids(name + ".dll") == [pid]
    assert processes.find_pids(name + "x") == []


def test_find_pids_by_argv0_when_comm_differs(tmp_path: Path, started: List[subprocess.Popen]) -> None:
    called = _unique("argv")
    pid = _sleeper(tmp_path, started, _unique(), argv0=f"/opt/{called}")
    assert processes.find_pids(called) == [pid]


def test_find_pids_by_a_comm_the_kernel_cut_to_15_characters(
    tmp_path: Path, started: List[subprocess.Popen]
) -> None:
    long_name = _unique("pdalongname") + "-service"  # 27 characters; comm keeps the first 15
    pid = _sleeper(tmp_path, started, long_name, argv0="other")
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == long_name[:15]
    assert processes.find_pids(long_name) == [pid]


def test_find_pids_knows_dotnet_app_dll(tmp_path: Path, started: List[subprocess.Popen]) -> None:
    app = _unique("App")
    script = tmp_path / f"{app}.dll"  # python runs it; /proc shows "dotnet <path>/App.dll"
    script.write_text("import time\ntime.sleep(60)\n")
    child = subprocess.Popen(["dotnet", str(script)], executable=sys.executable)
    started.append(child)
    _wait_for_exec(child.pid, ["dotnet", str(script)])
    assert processes.find_pids(app) == [child.pid]
    assert processes.find_pids(app + ".dll") == [child.pid]
    assert processes.name_of(child.pid) == app  # its dumps are named after the app, not "dotnet"


@pytest.mark.parametrize(
    "argv, app",
    [
        (["dotnet", "/srv/Orders.Api.dll", "--urls", "x"], "Orders.Api"),
        (["/usr/share/dotnet/dotnet", "Orders.dll"], "Orders"),
        (["dotnet", "exec", "Orders.dll"], None),  # dotnet exec ...: not guessed
        (["Orders"], None),
        (["dotnet"], None),
    ],
)
def test_hosted_app(argv: List[str], app: Optional[str]) -> None:
    assert processes.hosted_app(argv) == app


def test_find_pids_leaves_out_this_process() -> None:
    with open("/proc/self/comm") as f:
        own = f.read().strip()
    assert os.getpid() not in processes.find_pids(own)


def test_find_one_none_several_and_a_wait_that_times_out(
    tmp_path: Path, started: List[subprocess.Popen]
) -> None:
    name = _unique()
    with pytest.raises(NoSuchProcessError, match="wait=True"):
        processes.find_one(name)
    with pytest.raises(NoSuchProcessError, match="started within 0.1 s"):
        processes.find_one(name, wait=True, timeout=0.1, poll=0.02)
    first = _sleeper(tmp_path, started, name)
    assert processes.find_one(name) == first
    second = _sleeper(tmp_path, started, name)
    with pytest.raises(ConfigurationError, match=f"2 processes are called .*{min(first, second)}"):
        processes.find_one(name)


def test_what_proc_says_about_this_process() -> None:
    pid = os.getpid()
    assert processes.state_of(pid) == "R"  # it is reading its own stat
    assert processes.alive(pid)
    with open("/proc/self/status") as f:
        tracer = int(next(line for line in f if line.startswith("TracerPid:")).split()[1])
    assert processes.tracer_of(pid) == tracer
    assert processes.memory_size(pid) > 1 << 20  # a Python interpreter maps more than a MiB


def test_a_sleeping_child_and_a_gone_one(tmp_path: Path, started: List[subprocess.Popen]) -> None:
    pid = _sleeper(tmp_path, started, _unique())
    assert processes.state_of(pid) in ("R", "S")
    assert processes.tracer_of(pid) == 0
    child = started.pop()
    child.kill()
    child.wait()
    assert processes.state_of(pid) is None and not processes.alive(pid)
    assert processes.tracer_of(pid) == 0 and processes.memory_size(pid) == 0


def test_wait_for_runtime_gives_up_on_a_process_without_dotnet() -> None:
    with pytest.raises(NotDotnetError, match="libcoreclr.so"):
        processes.wait_for_runtime(os.getpid(), timeout=0.05, poll=0.01)


def test_pid_max_is_the_kernels() -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        assert processes._pid_max() == int(f.read())


# ----- can a debugger attach? ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pid, error, text",
    [
        (0, ConfigurationError, "positive"),
        (-5, ConfigurationError, "positive"),
        (True, ConfigurationError, "positive"),
        (10**9, NoSuchProcessError, "pids on this system end"),
    ],
)
def test_bad_pids_are_refused(pid, error, text):
    with pytest.raises(error, match=text):
        processes.check_attachable(pid)


def test_gone_zombie_and_not_dotnet_pids_are_refused():
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(NoSuchProcessError, match="no process"):
        processes.check_attachable(gone.pid)
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while processes.state_of(zombie.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with pytest.raises(TargetError, match="zombie"):
            processes.check_attachable(zombie.pid)
    finally:
        zombie.wait()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(NotDotnetError, match="does not run .NET"):
            processes.check_attachable(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_traced_pid_names_its_tracer():
    # strace would do; python's own ptrace is not at hand: use a child stopped under "gdb -p"-like tracing
    # by running it under `strace` when available.
    import shutil

    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    traced = subprocess.Popen(["strace", "-o", "/dev/null", "sleep", "30"])
    try:
        deadline = time.monotonic() + 15
        child = None
        while child is None and time.monotonic() < deadline:
            out = subprocess.run(["pgrep", "-P", str(traced.pid)], capture_output=True, text=True).stdout
            child = int(out.split()[0]) if out.split() else None
            time.sleep(0.05)
        assert child is not None
        # strace forks the child before it attaches to it: wait until the kernel shows the tracer
        while processes.tracer_of(child) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(AlreadyTracedError, match=f"already traced by pid {traced.pid} \\(strace\\)"):
            processes.check_attachable(child, require_dotnet=False)
    finally:
        traced.kill()


def test_a_zombie_is_not_a_process_called_by_its_name():
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while processes.state_of(zombie.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert processes.state_of(zombie.pid) == "Z"
        assert zombie.pid not in processes.find_pids("true")
    finally:
        zombie.wait()
