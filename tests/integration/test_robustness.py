"""Issue 12 on the real lldb + SOS and the real sample app: signals, a dying Python, a hung lldb, dumps that
are all or nothing, and attaches refused with their real cause. Nothing may be left behind: no debugger,
no target, no partial file, no traced or stopped process."""

from __future__ import annotations

import glob
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional

import pytest

import pydbgauto as pda
from pydbgauto.drivers.lldb import process as lldb_process
from pydbgauto.watching import capture as watch_capture
from pydbgauto.watching import watch
from tests.integration.conftest import ROOT, WaitingApp, lldb_processes, process_state, tracer_of

pytestmark = pytest.mark.lldb


class CliWatch:
    """`pydbgauto watch --json` in a child process; its stdout lines read as they come."""

    def __init__(self, *args: str, cwd: str = ROOT) -> None:
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pydbgauto", "watch", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        self.lines: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.seen: List[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass
        self.lines.put(None)

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, f"the watch ended before {event!r}: {self.stderr()}"
            self.seen.append(line)
            if line.get("event") == event:
                return line

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout=timeout)
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return code

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def debuggers(self) -> List[int]:
        return owned_debuggers(self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def owned_debuggers(owner: int) -> List[int]:
    tag = f"PYDBGAUTO_OWNER_PID={owner}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if tag in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def wait_until(check: Callable[[], bool], timeout: float) -> Optional[float]:
    """Seconds until ``check()`` held, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


@pytest.fixture
def target(app: str) -> Iterator[WaitingApp]:
    w = WaitingApp(app)
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()


@pytest.fixture
def watcher_cleanup() -> Iterator[List[CliWatch]]:
    made: List[CliWatch] = []
    yield made
    for w in made:
        w.kill()
        for pid in w.debuggers():  # a test that failed half-way: never leave a debugger behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def assert_target_free_and_working(app: WaitingApp) -> None:
    """Untraced, not stopped, and it still throws and catches (no breakpoint byte left to kill it)."""
    assert wait_until(lambda: tracer_of(app.pid) == 0, 5) is not None, "the target is still traced"
    assert process_state(app.pid) in ("R", "S"), process_state(app.pid)
    before = len(app.lines)
    app.send("invalid-op")
    assert wait_until(lambda: "OK invalid-op" in app.lines[before:], 20) is not None, app.lines[before:]
    assert app.proc.poll() is None and any(line.startswith("CAUGHT") for line in app.lines[before:])


def no_partial_files(folder: str) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".partial")]


def read_log(folder: str) -> List[dict]:
    with open(os.path.join(folder, "pydbgauto-decisions.jsonl")) as f:
        return [json.loads(line) for line in f]


# ----- item 3: signals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_right_after_armed_ends_the_watch_like_ctrl_c(
    target, tmp_path, signame, watcher_cleanup, no_lldb_left
):
    signum = getattr(signal, signame)
    w = CliWatch("--pid", str(target.pid), "--dump-dir", str(tmp_path), "--max-dumps", "0")
    watcher_cleanup.append(w)
    w.wait_for("armed")
    started = time.monotonic()
    w.proc.send_signal(signum)
    code = w.finish()
    seconds = time.monotonic() - started
    assert code == 128 + signum, w.stderr()
    assert seconds < 8, seconds
    summary = w.seen[-1]
    assert summary["event"] == "summary" and summary["ended"] == "interrupted"
    assert not w.debuggers()
    assert_target_free_and_working(target)


def test_sigterm_while_attaching_and_arming(target, tmp_path, watcher_cleanup, no_lldb_left):
    w = CliWatch("--pid", str(target.pid), "--dump-dir", str(tmp_path))
    watcher_cleanup.append(w)
    assert wait_until(lambda: bool(w.debuggers()), 30) is not None
    time.sleep(0.3)  # lldb is starting, loading SOS, attaching or arming
    started = time.monotonic()
    w.proc.send_signal(signal.SIGTERM)
    assert w.finish() == 143, w.stderr()
    assert time.monotonic() - started < 8
    assert w.seen and w.seen[-1]["event"] == "summary" and w.seen[-1]["ended"] == "interrupted"
    assert not w.debuggers()
    assert_target_free_and_working(target)


@pytest.mark.parametrize("phase", ["stopped", "dumping"])
def test_sigterm_while_stopped_or_dumping(target, tmp_path, phase, watcher_cleanup, no_lldb_left):
    """At a stop (a slow Python predicate holds the target) or as a dump starts: detach, nothing partial,
    the log has the exception, the record says what happened to the dump."""
    (tmp_path / "slowcheck.py").write_text(
        "import time\ndef slow(exc):\n    time.sleep(60)\n    return True\n"
        "def yes(exc):\n    return True\n"
    )
    when = "slowcheck:slow" if phase == "stopped" else "slowcheck:yes"
    w = CliWatch("--pid", str(target.pid), "--dump-dir", str(tmp_path), "--when", when, cwd=str(tmp_path))
    watcher_cleanup.append(w)
    w.wait_for("armed")
    target.send("invalid-op")
    if phase == "stopped":
        assert wait_until(lambda: process_state(target.pid) == "t", 30) is not None
        time.sleep(0.3)
    else:
        w.wait_for("dump-start")
    w.proc.send_signal(signal.SIGTERM)
    # A slow disk can hold lldb's end (a killed lldb in uninterruptible I/O, seen once in CI): wait for it
    code = w.finish(timeout=5 + lldb_process.KILLED_WAIT + 15)
    assert code == 143, w.stderr()
    assert w.seen[-1]["event"] == "summary" and w.seen[-1]["ended"] == "interrupted"
    assert not w.debuggers()
    assert no_partial_files(str(tmp_path)) and not glob.glob(str(tmp_path / "*.core"))
    log = read_log(str(tmp_path))
    if phase == "dumping":  # the decision was logged; the record says the dump was removed
        assert [line["action"] for line in log] == ["dump"]
        records = glob.glob(str(tmp_path / "*.core.json"))
        assert len(records) == 1
        with open(records[0]) as f:
            record = json.load(f)
        assert record["dump"] is None and "interrupted" in record["dump_error"]
    assert_target_free_and_working(target)


def test_api_watch_raises_interrupted_with_the_result(target, tmp_path, no_lldb_left):
    """pda.watch in the main thread: SIGTERM ends it, the result rides on pda.Interrupted."""
    seen: Dict[str, object] = {}

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":  # an IOE the agent filters out, then SIGTERM while the wait goes on
            target.send("invalid-op")
            threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        if kind == "done":
            seen["done"] = data["result"]

    old = signal.getsignal(signal.SIGTERM)
    with pytest.raises(pda.Interrupted) as caught:
        watch(
            pid=target.pid,
            when=pda.exception_type("System.TimeoutException"),
            dump_dir=str(tmp_path),
            timeout=60,
            on_event=on_event,
        )
    assert signal.getsignal(signal.SIGTERM) == old  # the caller's handler is back
    result = caught.value.result
    assert caught.value.signum == signal.SIGTERM and result is seen["done"]
    # the throw the agent's filter let pass during the cancelled wait is still counted and logged
    assert result.ended == "interrupted" and result.events_seen == 1 and result.signal == signal.SIGTERM
    assert [line["exception_type"] for line in read_log(str(tmp_path))] == [
        "System.InvalidOperationException"
    ]
    assert_target_free_and_working(target)


# ----- item 4: Python dies --------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["armed", "dumping"])
def test_python_killed_leaves_no_debugger_and_no_partial_dump(target, tmp_path, phase, watcher_cleanup):
    w = CliWatch("--pid", str(target.pid), "--dump-dir", str(tmp_path), "--no-verify")
    watcher_cleanup.append(w)
    w.wait_for("armed")
    if phase == "dumping":
        target.send("invalid-op")
        w.wait_for("dump-start")
    debuggers = w.debuggers()
    assert debuggers and tracer_of(target.pid) in debuggers
    w.proc.kill()
    w.proc.wait()
    gone = wait_until(lambda: not owned_debuggers(w.proc.pid) and tracer_of(target.pid) == 0, 10)
    assert gone is not None, f"still there: {owned_debuggers(w.proc.pid)}, tracer {tracer_of(target.pid)}"
    assert gone < 3, gone
    # a core lldb finished after Python died is discarded, never named
    time.sleep(1)
    assert no_partial_files(str(tmp_path)) and not glob.glob(str(tmp_path / "*.core"))
    assert_target_free_and_working(target)


# ----- item 5: a hung debugger ----------------------------------------------------------------------------


def test_stopped_lldb_is_a_debugger_problem_within_its_limit(target, tmp_path, watcher_cleanup, no_lldb_left):
    w = CliWatch("--pid", str(target.pid), "--dump-dir", str(tmp_path), "--timeout", "4")
    watcher_cleanup.append(w)
    w.wait_for("armed")
    lldb = [p for p in w.debuggers() if open(f"/proc/{p}/comm").read().strip().startswith("lldb")]
    main = [p for p in lldb if "server" not in open(f"/proc/{p}/comm").read()]
    assert main, lldb
    started = time.monotonic()
    os.kill(main[0], signal.SIGSTOP)
    target.send("invalid-op")  # thrown while lldb is stopped
    code = w.finish(timeout=60)
    seconds = time.monotonic() - started
    err = w.stderr()
    assert code == 4, err
    assert "did not answer" in err and "hung" in err
    assert seconds < 4 + 5 + 8, seconds  # its limit, the grace, then the revive-and-detach
    assert not w.debuggers()
    assert_target_free_and_working(target)


# ----- item 6: dumps are all or nothing -------------------------------------------------------------------


def test_target_killed_during_the_dump(target, tmp_path, no_lldb_left):
    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            target.send("invalid-op")
        if kind == "dump-start":
            target.proc.kill()

    result = watch(pid=target.pid, dump_dir=str(tmp_path), timeout=60, on_event=on_event)
    target.proc.wait()
    assert len(result.captures) == 1 and result.dumps == ()
    capture = result.captures[0]
    assert capture.dump is None and "died" in (capture.dump_error or ""), capture.dump_error
    assert "0 dumps written, 1 failed" in str(result)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(capture.record_path or ""), "pydbgauto-decisions.jsonl"]
    )
    with open(capture.record_path or "") as f:
        assert "died" in json.load(f)["dump_error"]


@pytest.fixture
def small_tmpfs(tmp_path) -> Iterator[str]:
    folder = str(tmp_path / "small")
    os.mkdir(folder)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", folder], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


def test_disk_full_during_the_dump(target, small_tmpfs, no_lldb_left):
    """The disk fills as the dump is written: the core is gone, the error says so, exit 5 in the CLI."""

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            target.send("invalid-op")
        if kind == "dump-start":  # leave 4 MiB: the core needs ~60
            free = os.statvfs(small_tmpfs)
            with open(os.path.join(small_tmpfs, "filler"), "wb") as f:
                f.truncate(0)
                f.write(b"\1" * (free.f_bavail * free.f_frsize - (4 << 20)))

    result = watch(
        pid=target.pid, dump_dir=small_tmpfs, timeout=60, min_free_disk=0, verify=False, on_event=on_event
    )
    assert len(result.captures) == 1 and result.dumps == ()
    error = result.captures[0].dump_error or ""
    assert "No space left on device" in error and "removed" in error, error
    assert sorted(os.listdir(small_tmpfs)) == sorted(
        ["filler", "pydbgauto-decisions.jsonl", os.path.basename(result.captures[0].record_path or "")]
    )
    assert_target_free_and_working(target)


def test_cli_min_free_disk_refuses_up_front(target, tmp_path):
    before = set(lldb_processes())
    done = subprocess.run(
        [sys.executable, "-m", "pydbgauto", "watch", "--pid", str(target.pid), "--dump-dir", str(tmp_path)]
        + ["--min-free-disk", "1000000G"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
        timeout=60,
    )
    assert done.returncode == 5, done.stderr
    assert "can take up to" in done.stderr and "--min-free-disk" in done.stderr
    assert set(lldb_processes()) == before and tracer_of(target.pid) == 0


# ----- item 7: refused clearly, before a debugger starts --------------------------------------------------


def test_second_watcher_is_refused_and_the_first_goes_on(target, tmp_path, watcher_cleanup, no_lldb_left):
    first = CliWatch(
        "--pid", str(target.pid), "--dump-dir", str(tmp_path), "--type", "System.FormatException"
    )
    watcher_cleanup.append(first)
    first.wait_for("armed")
    second = subprocess.run(
        [sys.executable, "-m", "pydbgauto", "watch", "--pid", str(target.pid), "--dump-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
        timeout=60,
    )
    assert second.returncode == 3, second.stderr
    assert (
        "already traced by" in second.stderr and f"pydbgauto watch in pid {first.proc.pid}" in second.stderr
    )
    target.send("inner")  # FormatException, then ApplicationException: the first watch dumps it
    dump = first.wait_for("dump", 60)
    assert dump["capture"]["exception"]["type"] == "System.FormatException"
    assert first.finish() == 0
    assert_target_free_and_working(target)


@pytest.mark.parametrize("kind", ["zero", "negative", "huge", "gone", "zombie", "not-dotnet"])
def test_bad_pids_refused_before_any_debugger(kind, tmp_path):
    helper = None
    if kind in ("gone", "zombie", "not-dotnet"):
        helper = subprocess.Popen(["sleep", "30"] if kind == "not-dotnet" else ["true"])
        if kind == "gone":
            helper.wait()
        if kind == "zombie":
            assert wait_until(lambda: process_state(helper.pid) == "Z", 5) is not None
    pid = {"zero": 0, "negative": -3, "huge": 10**8}.get(kind, helper.pid if helper else 0)
    error, text = {
        "zero": (pda.ConfigurationError, "positive"),
        "negative": (pda.ConfigurationError, "positive"),
        "huge": (pda.NoSuchProcessError, "no process"),
        "gone": (pda.NoSuchProcessError, "no process"),
        "zombie": (pda.TargetError, "zombie"),
        "not-dotnet": (pda.NotDotnetError, "does not run .NET"),
    }[kind]
    before = set(lldb_processes())
    started = time.monotonic()
    try:
        with pytest.raises(error, match=text):
            watch(pid=pid, dump_dir=str(tmp_path), timeout=5)
    finally:
        if helper is not None:
            helper.kill()
            helper.wait()
    assert time.monotonic() - started < 2 and set(lldb_processes()) == before
    assert not os.listdir(tmp_path)  # not even the decision log


def test_another_users_process_is_refused_with_the_cause(target):
    """A normal user (nobody) may not watch root's service: refused before lldb starts, the real cause."""
    import shutil

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run pydbgauto as another user")
    folder = tempfile.mkdtemp(prefix="pda-nobody-", dir="/var/tmp")  # pytest's tmp_path is root's only
    try:
        os.chmod(folder, 0o777)
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "pydbgauto"]
            + ["watch", "--pid", str(target.pid), "--dump-dir", folder, "--timeout", "3"],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE="1"),
            cwd=folder,
            timeout=60,
        )
        assert done.returncode == 3, done.stderr
        assert "permission denied" in done.stderr and "belongs to user id 0" in done.stderr
        assert tracer_of(target.pid) == 0 and not os.listdir(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_planted_symlink_at_the_decision_log(target, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "pydbgauto-decisions.jsonl").symlink_to(victim)
    before = set(lldb_processes())
    with pytest.raises(pda.ConfigurationError, match="symlink"):
        watch(pid=target.pid, dump_dir=str(tmp_path), timeout=5)
    assert victim.read_text() == "precious\n" and set(lldb_processes()) == before


def test_planted_symlinks_at_dump_and_record_names(target, tmp_path, no_lldb_left):
    """Symlinks where the dump and the record will go: refused with a clear error, the victims untouched."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "dump1.core").symlink_to(victim)
    (tmp_path / "dump2.core.json").symlink_to(victim)

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            target.send("repeat 2")

    result = watch(
        pid=target.pid,
        dump_dir=str(tmp_path),
        name_template="dump{n}.core",
        max_dumps=2,
        dedupe=False,
        verify=False,
        timeout=60,
        on_event=on_event,
    )
    assert victim.read_text() == "precious\n"
    first, second = result.captures
    assert (
        first.dump is None
        and "already exists" in (first.dump_error or "")
        and "never overwrites" in (first.dump_error or "")
    )
    assert second.dump is not None and second.record_path is None
    assert "symlink" in (second.dump_error or "")
    assert os.path.islink(tmp_path / "dump1.core") and os.path.islink(tmp_path / "dump2.core.json")
    assert no_partial_files(str(tmp_path))
    assert_target_free_and_working(target)


def test_files_are_private_with_umask_000(app, tmp_path, no_lldb_left):
    old = os.umask(0)
    try:
        result = watch(launch=[app, "invalid-op"], dump_dir=str(tmp_path), timeout=60, verify=False)
    finally:
        os.umask(old)
    assert len(result.dumps) == 1
    for name in os.listdir(tmp_path):
        assert os.stat(tmp_path / name).st_mode & 0o077 == 0, name


def test_name_wait_honours_the_timeout(tmp_path):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pydbgauto", "watch", "--name", "NoSuchServiceXyz", "--wait"]
        + ["--timeout", "3", "--dump-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
        timeout=60,
    )
    assert done.returncode == 3 and "within 3" in done.stderr, done.stderr
    assert time.monotonic() - started < 3 + 3


def test_predicate_that_never_returns_releases_the_target(target, tmp_path, no_lldb_left):
    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            target.send("invalid-op")

    started = time.monotonic()
    result = watch(
        pid=target.pid,
        when=lambda exc: time.sleep(3600),
        dump_dir=str(tmp_path),
        timeout=4,
        on_event=on_event,
    )
    assert time.monotonic() - started < 4 + 6
    assert result.ended == "timeout" and result.events_seen == 1
    assert "did not return" in read_log(str(tmp_path))[0]["predicate_error"]
    assert_target_free_and_working(target)


def test_launch_leaves_no_temporary_folder(app, tmp_path, monkeypatch, no_lldb_left):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = watch(launch=[app, "invalid-op"], dump_dir=str(tmp_path), timeout=60, verify=False)
    assert result.ended in ("max-dumps", "exit")
    assert os.listdir(scratch) == []


def test_long_watch_keeps_counts_not_every_event(target, tmp_path, monkeypatch, no_lldb_left):
    """Events are streamed: WatchResult keeps the last KEEP_DECISIONS, the log and the counts have all."""
    monkeypatch.setattr(watch_capture, "KEEP_DECISIONS", 5)

    def on_event(kind: str, data: dict) -> None:
        if kind == "armed":
            target.send("repeat 30")
            target.send("exit")

    result = watch(
        pid=target.pid,
        # a message is decided at every stop (a type that never matches is ruled out in the target and
        # logged once, and on .NET 8 so is a message without the regex's literal: docs/linux-fast-filter.md)
        when=pda.message_matches("The order queue timeout expired(?!$)"),
        dump_dir=str(tmp_path),
        timeout=120,
        on_event=on_event,
    )
    assert result.ended == "exit"
    assert result.events_seen == 30 and len(result.decisions) == 5
    assert len(read_log(str(tmp_path))) == 31  # every throw once, and the exit
