"""Fixtures for tests against the real lldb + SOS and the real sample apps (built by scripts/setup).

The sample service (examples/ServiceApp; the client is tests/integration/service.py):

    def test_x(service):                        # started on a free 127.0.0.1 port, both runtimes
        service.handled("System.TimeoutException", n=5)
        assert service.stats()["kinds"]["handled"] == {"System.TimeoutException": 5}

    def test_y(runtime, start_service, service_load):
        svc = start_service(runtime)            # as many as needed; all stopped at the end
        svc.warm_up()                           # thousands of throws first: a warm service
        load = service_load(svc, "/handled", {"n": 10}, count=500, seconds=60)   # a client thread
        ...                                     # e.g. attach a Session to svc.pid meanwhile
        load.join(90)

Every service is stopped (`/exit`, then killed) and every load stopped at teardown, on failure too.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Mapping, Optional

import pytest

from tests.integration.normal_user import NormalUser, find_user, make_user_workspace, remove_workspace
from tests.integration.service import SERVICES, Load, Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = {
    "net8": os.path.join(ROOT, ".build", "app-net8", "ThrowingApp"),
    "net9": os.path.join(ROOT, ".build", "app-net9", "ThrowingApp"),  # test_net9_*.py only
    "net10": os.path.join(ROOT, ".build", "app-net10", "ThrowingApp"),
}


def _missing() -> List[str]:
    missing = [f"sample app {k} ({p})" for k, p in APPS.items() if not os.access(p, os.X_OK)]
    if not shutil.which("lldb-19"):
        missing.append("lldb-19")
    try:
        from pydbgauto import locate

        locate.find_sos_plugin()
        locate.find_dotnet_dump()
    except Exception as e:  # noqa: BLE001 - report whatever is missing
        missing.append(str(e))
    return missing


@pytest.fixture(scope="session", autouse=True)
def _integration_parts() -> None:
    missing = _missing()
    if missing:
        message = "integration parts missing (run scripts/setup): " + "; ".join(missing)
        if os.environ.get("PYDBGAUTO_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["net8", "net10"])
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(runtime: str) -> str:
    return APPS[runtime]


class WaitingApp:
    """The sample app in `wait` mode: prints READY, then runs one scenario per line we send.

    A thread drains its stdout all the time: an app blocked on a full pipe looks like a missed event.
    """

    def __init__(self, path: str, **popen: Any) -> None:  # popen: e.g. NormalUser.popen_kwargs()
        self.proc = subprocess.Popen(
            [path, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, **popen
        )
        self.lines: List[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.wait_for_line("READY", 60), f"the sample app did not get READY: {self.lines}"
        self.pid = self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(line.startswith(prefix) for line in self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return False
                self._changed.wait(remaining)
            return True

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> List[str]:
        """Tell it to exit and collect the rest of its output."""
        try:
            self.send("exit")
        except (BrokenPipeError, OSError):
            pass
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return list(self.lines)

    def state(self) -> str:
        return process_state(self.pid)


def renamed_app(tmp_path: Any, runtime: str, prefix: str) -> str:
    """The sample app as ``<tmp>/app-<runtime>/<prefix><8 hex digits>``: a process name no other test uses
    (other tests run ThrowingApp on this machine at the same time). The apphost finds ThrowingApp.dll beside
    it whatever it is called; keep ``prefix`` to 7 characters (the kernel's comm is 15)."""
    folder = tmp_path / f"app-{runtime}"
    shutil.copytree(os.path.join(ROOT, ".build", f"app-{runtime}"), folder)
    name = prefix + secrets.token_hex(4)
    os.rename(folder / "ThrowingApp", folder / name)
    return str(folder / name)


def process_state(pid: int) -> str:
    """The kernel's one-letter state: R/S running or sleeping, T/t stopped or traced-stopped, Z, X."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return "gone"
    return raw[raw.rindex(")") + 2]


def stopped_state(pid: int) -> str:
    """'t' while every thread of the process is traced-stopped (a debugger's stop: lldb stops them all),
    else the main thread's state ('t1' when it is stopped but others run). One thread alone in a
    signal-delivery stop is not the target stopped to look at it: the stop guard's release at each
    resume is a SIGCONT to one thread (usually the main one), which waits a moment in the kernel for
    lldb-server to pass it on (measured: the main thread 't' for 1-5 ms while the 7 others ran)."""
    states = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return "gone"
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                raw = f.read()
        except OSError:
            continue  # a thread that ended meanwhile
        states.append(raw[raw.rindex(")") + 2])
    if states and all(state == "t" for state in states):
        return "t"
    state = process_state(pid)
    return "t1" if state == "t" else state


def tracer_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def run_cli(*args: str, cwd: str = ROOT, tmpdir: Optional[str] = None) -> subprocess.CompletedProcess:
    """``python -m pydbgauto ARGS`` with this checkout first on the path; its output captured."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    if tmpdir is not None:  # where its temporary folders go
        env["TMPDIR"] = tmpdir
    return subprocess.run(
        [sys.executable, "-m", "pydbgauto", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def lldb_processes(owner: Optional[int] = None) -> List[int]:
    """lldb and lldb-server processes started by this test process, or by the pydbgauto in pid ``owner``
    (the driver tags their environment)."""
    tag = f"PYDBGAUTO_OWNER_PID={owner or os.getpid()}".encode()
    out = subprocess.run(["pgrep", "-f", "lldb"], capture_output=True, text=True).stdout
    mine = []
    for pid in (int(p) for p in out.split()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    mine.append(pid)
        except OSError:
            pass
    return sorted(mine)


@pytest.fixture(scope="session")
def normal_user() -> Iterator[NormalUser]:
    """A normal user with a workspace of its own (tests/integration/normal_user.py): as root the account
    scripts/setup creates, else ourselves."""
    entry = find_user()
    if entry is None:
        message = "no normal user to test with: run scripts/setup as root (it creates pydbgauto-test)"
        if os.environ.get("PYDBGAUTO_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)
    user = make_user_workspace(entry, list(APPS))
    yield user
    remove_workspace(user)


@pytest.fixture
def waiting_app(app: str) -> Iterator[WaitingApp]:
    w = WaitingApp(app)
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()


@pytest.fixture
def no_lldb_left() -> Iterator[None]:
    before = set(lldb_processes())
    yield
    deadline = time.monotonic() + 10
    while set(lldb_processes()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(lldb_processes()) - before, "an lldb process was left behind"


def throw_lines(lines: List[str]) -> List[List[str]]:
    """The app's `THROW n Type tid=N what` lines, split."""
    return [line.split(" ", 4) for line in lines if line.startswith("THROW ")]


# -- the sample service ----------------------------------------------------------------------------


def _built_service(runtime: str) -> str:
    """The sample service built for ``runtime``; a skip if absent (fails if PYDBGAUTO_REQUIRE_INTEGRATION)."""
    path = SERVICES[runtime]
    if not os.access(path, os.X_OK):
        message = f"sample service {runtime} missing ({path}): run scripts/setup"
        if os.environ.get("PYDBGAUTO_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def service_path(runtime: str) -> str:
    """The path of the built sample service for ``runtime``."""
    return _built_service(runtime)


StartService = Callable[..., Service]


@pytest.fixture
def start_service() -> Iterator[StartService]:
    """``start_service(runtime, port=0, ready_timeout=60, env=None) -> Service``, READY already seen."""
    started: List[Service] = []

    def start(
        runtime: str, port: int = 0, ready_timeout: float = 60.0, env: Optional[Mapping[str, str]] = None
    ) -> Service:
        svc = Service(_built_service(runtime), port=port, ready_timeout=ready_timeout, env=env)
        started.append(svc)
        return svc

    yield start
    for svc in reversed(started):
        svc.stop(timeout=10.0)


@pytest.fixture
def service(runtime: str, service_path: str, start_service: StartService) -> Service:
    """The sample service on ``runtime`` (net8 and net10), on a free loopback port."""
    return start_service(runtime)


StartLoad = Callable[..., Load]


@pytest.fixture
def service_load() -> Iterator[StartLoad]:
    """``service_load(service, path, params=None, count=1000, seconds=30.0, pause=0.0) -> Load``: a started
    client thread repeating one GET, bounded in count and time; stopped at teardown."""
    loads: List[Load] = []

    def start(svc: Service, path: str, params: Optional[Mapping[str, Any]] = None, **bounds: Any) -> Load:
        load = Load(svc, path, params, **bounds)
        loads.append(load)
        return load.start()

    yield start
    for load in loads:
        load.stop()
