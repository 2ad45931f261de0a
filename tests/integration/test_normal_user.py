"""pydbgauto as a normal user: a service run by a non-root account, watched from Debian's Python.

As root the tests switch to the account scripts/setup creates (``pydbgauto-test``); not root, they run as
ourselves. The user's workspace (tests/integration/normal_user.py) holds its own copy of pydbgauto, the
sample apps and dotnet-dump (``~/.dotnet/tools``); nothing runs with root's environment.
"""

from __future__ import annotations

import json
import secrets
import os
import shutil
import stat
import subprocess
import time
from typing import Any, Dict, Iterator, List

import pytest

from tests.integration.conftest import WaitingApp, lldb_processes, process_state, tracer_of
from tests.integration.normal_user import PYTHON, NormalUser, tracer_and_uid

pytestmark = pytest.mark.lldb


@pytest.fixture
def user_app(normal_user: NormalUser, runtime: str) -> Iterator[WaitingApp]:
    """The sample app in ``wait`` mode, started by the normal user from its own copy."""
    app = WaitingApp(normal_user.app(runtime), **normal_user.popen_kwargs())
    yield app
    if app.proc.poll() is None:
        app.proc.kill()
        app.proc.wait()


def _watch_lines(proc: subprocess.Popen, on_armed: Any) -> List[Dict[str, Any]]:
    """Read a ``watch --json`` to its end; call ``on_armed`` at the armed line."""
    assert proc.stdout is not None
    lines = []
    for raw in proc.stdout:
        line = json.loads(raw)
        lines.append(line)
        if line.get("event") == "armed":
            on_armed()
    return lines


def test_watch_of_own_process_dumps_and_leaves_it_running(normal_user, user_app, runtime):
    """The whole job as the service's own user: attach, see the throw, write a private verified dump,
    detach; the target runs on untraced and no lldb of the watch is left."""
    assert tracer_and_uid(user_app.pid)["uid"] == normal_user.uid
    dumps = normal_user.mkdir(f"dumps-{runtime}")
    watch = normal_user.popen(
        [PYTHON, "-m", "pydbgauto", "watch", "--pid", str(user_app.pid), "--json"]
        + ["--type", "System.InvalidOperationException", "--dump-dir", dumps, "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _watch_lines(watch, lambda: user_app.send("invalid-op"))
        stderr = watch.stderr.read() if watch.stderr else ""
        watch.wait(60)
        left = lldb_processes(watch.pid)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, (lines, stderr)
    assert "Traceback" not in stderr
    kinds = [line.get("event") for line in lines]
    assert "armed" in kinds and "exception" in kinds, lines
    exception = next(line for line in lines if line.get("event") == "exception")
    assert "System.InvalidOperationException" in json.dumps(exception)

    cores = [name for name in os.listdir(dumps) if name.endswith(".core")]
    assert len(cores) == 1, os.listdir(dumps)
    for name in os.listdir(dumps):  # the dump, its record, the decision log: the user's, private
        info = os.stat(os.path.join(dumps, name))
        assert info.st_uid == normal_user.uid and stat.S_IMODE(info.st_mode) == 0o600, (
            name,
            oct(info.st_mode),
        )
    with open(os.path.join(dumps, cores[0] + ".json")) as f:
        record = json.load(f)
    dump = record["dump"]
    assert (
        dump["verified"] is True and dump["seen_exception_type"] == "System.InvalidOperationException"
    ), dump

    assert not left, f"lldb processes of the watch left: {left}"
    assert tracer_of(user_app.pid) == 0 and process_state(user_app.pid) in "RS"
    user_app.send("invalid-op")  # it still throws and catches, untraced
    out = user_app.finish()
    assert out[-1] == "DONE 2", out


@pytest.fixture
def root_process() -> Iterator[int]:
    """A root-owned process: the sample app started by us when we are root, else pid 1 (if root's)."""
    if os.geteuid() != 0:
        if tracer_and_uid(1).get("uid") != 0:
            pytest.skip("no root-owned process to point a watch at (pid 1 is not root's)")
        yield 1
        return
    from tests.integration.conftest import APPS

    app = WaitingApp(APPS["net10"])  # the refusal comes before any look at the runtime
    yield app.pid
    app.finish()


def test_watch_of_a_root_process_is_refused_with_what_to_do(normal_user, root_process):
    """A normal user pointing a watch at root's process: exit 3 and the cause, at once; no lldb, no trace."""
    folder = normal_user.mkdir("refused-root")
    started = time.monotonic()
    done = normal_user.pydbgauto("watch", "--pid", str(root_process), "--dump-dir", folder, "--timeout", "30")
    took = time.monotonic() - started
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert f"pid {root_process} belongs to user id 0" in done.stderr and "permission denied" in done.stderr
    assert "run pydbgauto as that user (or as root)" in done.stderr
    assert took < 30  # not the time limit: refused before any debugger starts
    assert tracer_of(root_process) == 0 and not os.listdir(folder)


def test_unwritable_dump_folder_is_refused_up_front(normal_user, user_app):
    """A dump folder the user cannot write (root's, or its own made read-only): exit 2 before lldb starts."""
    if normal_user.switch:
        folder = os.path.join(normal_user.workspace, "roots-folder")
        os.mkdir(folder, 0o755)  # root's, readable but not writable by the user
    else:
        folder = normal_user.mkdir("read-only", mode=0o500)
    try:
        done = normal_user.pydbgauto(
            "watch", "--pid", str(user_app.pid), "--dump-dir", folder, "--timeout", "30"
        )
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"the dump folder {folder} is not writable by this user" in done.stderr
        assert tracer_of(user_app.pid) == 0 and not os.listdir(folder)
        user_app.send("invalid-op")
        assert user_app.finish()[-1] == "DONE 1"
    finally:
        os.chmod(folder, 0o700)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_user_cannot_signal_or_read_roots_process(normal_user, root_process):
    """The premise of the refusal: the kernel itself keeps the user from root's process (no Yama needed)."""
    probe = (
        "import os, sys\n"
        "pid = int(sys.argv[1])\n"
        "try:\n    open(f'/proc/{pid}/mem', 'rb').read(1)\n"
        "except PermissionError:\n    print('mem: denied')\n"
        "try:\n    os.kill(pid, 0)\nexcept PermissionError:\n    print('kill: denied')\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", probe, str(root_process)],
        capture_output=True,
        text=True,
        timeout=60,
        **normal_user.popen_kwargs(),
    )
    assert done.stdout.split("\n")[:2] == ["mem: denied", "kill: denied"], (done.stdout, done.stderr)


_ATTACH_BY_NAME = """
import sys
from pydbgauto import ConfigurationError
from pydbgauto.session import Session
try:
    with Session.attach(name=sys.argv[1]) as s:
        print("ATTACHED", s.pid)
except ConfigurationError as e:
    print("REFUSED", e)
"""


def test_attach_by_name_takes_the_users_own_process(normal_user):
    """By name as a normal user: root's process of the same name does not make the user's ambiguous (it
    could never be attached to); with root's alone, refused with the cause (exit 3). Not root, two of the
    user's own stay ambiguous."""
    folder = normal_user.mkdir("named")
    name = "NU" + secrets.token_hex(4)
    shutil.copytree(os.path.dirname(normal_user.app("net10")), os.path.join(folder, "app"))
    os.rename(os.path.join(folder, "app", "ThrowingApp"), os.path.join(folder, "app", name))
    normal_user.chown_tree(folder)
    path = os.path.join(folder, "app", name)
    others = WaitingApp(path)  # root's when we are root, else a second one of the user's own
    mine = None
    try:
        if normal_user.switch:
            alone = normal_user.pydbgauto("watch", "--name", name, "--dump-dir", folder, "--timeout", "30")
            assert alone.returncode == 3, (alone.stdout, alone.stderr)
            assert f"no process called {name!r} is yours" in alone.stderr
            assert f"pid {others.pid} of user id 0" in alone.stderr and "Traceback" not in alone.stderr
        mine = WaitingApp(path, **normal_user.popen_kwargs())
        done = subprocess.run(
            [PYTHON, "-c", _ATTACH_BY_NAME, name],
            capture_output=True,
            text=True,
            timeout=300,
            **normal_user.popen_kwargs(),
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
        if normal_user.switch:
            assert done.stdout.split() == ["ATTACHED", str(mine.pid)], done.stdout
        else:
            assert done.stdout.startswith("REFUSED 2 processes are called") and "attach by pid" in done.stdout
        assert tracer_of(others.pid) == 0 and tracer_of(mine.pid) == 0
        mine.send("invalid-op")
        assert mine.finish()[-1] == "DONE 1"
    finally:
        for app in (others, mine):
            if app is not None and app.proc.poll() is None:
                app.proc.kill()
                app.proc.wait()


_NOT_DUMPABLE = (
    "import ctypes, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); print('READY', flush=True); time.sleep(120)"
)


@pytest.mark.parametrize("how", ["setcap", "prctl", "ambient-caps"])
def test_own_process_the_kernel_keeps_from_the_user_is_refused_with_the_cause(normal_user, how):
    """The user's own process, out of its reach: not dumpable (a setcap'd apphost, as for a service binding
    port 80; or prctl), or holding a capability the user's debugger lacks (systemd AmbientCapabilities=).
    Refused before lldb starts, saying why (was: "run as its owner", which the user is)."""
    if how != "prctl" and not normal_user.switch:
        pytest.skip("granting a capability needs root")
    folder = normal_user.mkdir(f"kept-{how}")
    if how == "setcap":
        shutil.copytree(os.path.dirname(normal_user.app("net10")), os.path.join(folder, "app"))
        normal_user.chown_tree(folder)
        app = os.path.join(folder, "app", "ThrowingApp")
        subprocess.run(["setcap", "cap_net_bind_service+ep", app], check=True)  # after chown: it clears caps
        target = normal_user.popen([app, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    elif how == "prctl":
        target = normal_user.popen([PYTHON, "-c", _NOT_DUMPABLE], stdout=subprocess.PIPE, text=True)
    else:
        target = subprocess.Popen(
            ["setpriv", "--reuid", str(normal_user.uid), "--regid", str(normal_user.gid), "--clear-groups"]
            + ["--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service"]
            + [normal_user.app("net10"), "wait"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=normal_user.env(),
        )
    try:
        assert target.stdout is not None and target.stdout.readline().startswith(("READY", "PID"))
        assert tracer_and_uid(target.pid)["uid"] == normal_user.uid
        done = normal_user.pydbgauto(
            "watch", "--pid", str(target.pid), "--dump-dir", folder, "--timeout", "30"
        )
        assert done.returncode == 3 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
        expected = "holds capabilities this user's debugger does not (cap_net_bind_service)"
        if how != "ambient-caps":
            expected = f"pid {target.pid} is not dumpable"
        assert expected in done.stderr and "run pydbgauto as root" in done.stderr, done.stderr
        assert tracer_of(target.pid) == 0 and target.poll() is None
    finally:
        target.kill()
        target.wait()


@pytest.mark.parametrize("scope", ["0", "1", "2", "3"])
def test_a_yama_refusal_is_explained(normal_user, scope):
    """This machine has no Yama: a file stands in for /proc/sys/kernel/yama/ptrace_scope (a test double of
    the sysctl), read by the user's pydbgauto, which explains an attach the kernel refused."""
    folder = normal_user.mkdir(f"yama-{scope}")
    fake = os.path.join(folder, "ptrace_scope")
    with open(fake, "w") as f:
        f.write(scope + "\n")
    normal_user.chown(fake)
    code = "import sys; from pydbgauto import ptrace_access; print(ptrace_access.yama_refusal(sys.argv[1]))"
    done = subprocess.run(
        [PYTHON, "-c", code, fake], capture_output=True, text=True, timeout=60, **normal_user.popen_kwargs()
    )
    expected = {
        "0": "None",
        "1": "only to its own descendants; launch the program under pydbgauto instead",
        "2": "only CAP_SYS_PTRACE may attach",
        "3": "no process may be attached to",
    }[scope]
    assert expected in done.stdout, (done.stdout, done.stderr)
