"""Issue 12, the pure and local parts: private files, planted symlinks, pids refused up front, predicates
under a deadline, sizes, cores that are all or nothing. No debugger is started here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import pydbgauto as pda
from pydbgauto import coredump, processes
from pydbgauto import predicates as preds
from pydbgauto.cli import _size_arg
from pydbgauto.errors import ConfigurationError, DumpError
from pydbgauto.models import StopEvent
from pydbgauto.watching import WatchResult, _write_new_json, evaluate_within, open_private_log


@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def test_decision_log_is_private_even_with_umask_000(tmp_path, umask_000):
    path = str(tmp_path / "log.jsonl")
    fd = open_private_log(path)
    os.close(fd)
    assert os.stat(path).st_mode & 0o777 == 0o600
    # an existing log of ours, made readable by someone: made private again
    os.chmod(path, 0o644)
    os.close(open_private_log(path))
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_decision_log_refuses_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "pydbgauto-decisions.jsonl"
    link.symlink_to(victim)
    with pytest.raises(ConfigurationError, match="symlink"):
        open_private_log(str(link))
    assert victim.read_text() == "precious\n"
    dangling = tmp_path / "other.jsonl"
    dangling.symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(ConfigurationError, match="symlink"):
        open_private_log(str(dangling))
    assert not (tmp_path / "does-not-exist").exists()


def test_decision_log_refuses_hard_links_and_fifos(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.link(victim, tmp_path / "linked.jsonl")
    with pytest.raises(ConfigurationError, match="hard links"):
        open_private_log(str(tmp_path / "linked.jsonl"))
    os.mkfifo(tmp_path / "fifo.jsonl")
    started = time.monotonic()
    with pytest.raises(ConfigurationError):
        open_private_log(str(tmp_path / "fifo.jsonl"))
    assert time.monotonic() - started < 2  # never blocks on a FIFO


def test_capture_record_refuses_symlinks_and_existing_files(tmp_path, umask_000):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "a.core.json").symlink_to(victim)
    with pytest.raises(DumpError, match="symlink"):
        _write_new_json(str(tmp_path / "a.core.json"), {"x": 1})
    assert victim.read_text() == "precious"
    (tmp_path / "b.core.json").write_text("{}")
    with pytest.raises(DumpError, match="a file is already"):
        _write_new_json(str(tmp_path / "b.core.json"), {"x": 1})
    _write_new_json(str(tmp_path / "c.core.json"), {"x": 1})
    assert os.stat(tmp_path / "c.core.json").st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "c.core.json").read_text()) == {"x": 1}


def test_predicate_deadline():
    exception = pda.ManagedException(address=0x1000, type="System.Exception", message="m")
    event = StopEvent(kind="first-chance", sequence=1, exception=exception)
    facts = preds.Facts(event=event)
    slow = preds.as_predicate(lambda exc: time.sleep(30))
    started = time.monotonic()
    assert evaluate_within(slow, facts, time.monotonic() + 0.5) is None
    assert time.monotonic() - started < 1.5
    raising = preds.as_predicate(lambda exc: 1 / 0)
    verdict = evaluate_within(raising, facts, time.monotonic() + 5)
    assert verdict is not None and not verdict.matched and "ZeroDivisionError" in (verdict.error or "")
    assert evaluate_within(preds.first_chance(), facts, None) == preds.Verdict(True)


def test_sizes_for_min_free_disk():
    assert [_size_arg(x) for x in ("0", "100", "1k", "500M", "2G", "1.5GiB")] == [
        0,
        100,
        1024,
        500 << 20,
        2 << 30,
        3 << 29,
    ]
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        _size_arg("lots")


def test_watch_result_counts_failed_dumps_apart():
    capture = pda.CaptureRecord(
        event=StopEvent(kind="first-chance", sequence=1),
        decision=pda.DecisionRecord("dump", "matched", n=1),
        dump=None,
        dump_error="disk full",
    )
    result = WatchResult((capture,), (), "timeout", "/x.jsonl", 1.0, exceptions=7, matches=1)
    assert result.events_seen == 7 and result.dumps == ()
    assert "0 dumps written, 1 failed" in str(result)
    assert "interrupted (SIGTERM)" in str(WatchResult((), (), "interrupted", "/x", 0.1, signal=15))


def test_core_is_unnamed_until_complete(tmp_path):
    """A core that fails half-way leaves no file at all (it never had a name)."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        path = str(tmp_path / "x.core")
        fd, named = coredump._create(path)
        assert not named and os.listdir(tmp_path) == []  # O_TMPFILE: nothing visible while written
        os.write(fd, b"partial")
        os.close(fd)
        assert os.listdir(tmp_path) == []
        # the owner check: inside lldb the asking pydbgauto is lldb's parent; here it is not
        os.environ["PYDBGAUTO_OWNER_PID"] = str(os.getppid() + 1 if os.getppid() != 1 else 2)
        try:
            with pytest.raises(RuntimeError, match="ended while the core was written"):
                coredump.write_core(path, sleeper.pid, [])
        finally:
            del os.environ["PYDBGAUTO_OWNER_PID"]
        assert os.listdir(tmp_path) == []
        info = coredump.write_core(path, sleeper.pid, [])
        assert os.listdir(tmp_path) == ["x.core"] and info["size"] > 0
        assert os.stat(path).st_mode & 0o777 == 0o600
    finally:
        sleeper.kill()
        sleeper.wait()
    zombie = subprocess.Popen(["true"])  # a target that died: a zombie until reaped
    deadline = time.monotonic() + 5
    while processes.state_of(zombie.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with pytest.raises((RuntimeError, OSError)):
            coredump.write_core(str(tmp_path / "y.core"), zombie.pid, [])
    finally:
        zombie.wait()
    assert os.listdir(tmp_path) == ["x.core"]


def test_interrupted_is_a_keyboard_interrupt_outside_the_tree():
    e = pda.Interrupted(15, None)
    assert isinstance(e, KeyboardInterrupt) and not isinstance(e, Exception) and e.signum == 15
    assert sys.modules["pydbgauto.errors"].DebuggerNotAnsweringError.__mro__[1] is pda.DebuggerTimeoutError


def test_guardian_leaves_on_bye_and_kills_a_hung_debugger(monkeypatch):
    """`bye`: it ends at once. End of input (its pydbgauto died) with the 'lldb' still there past GIVE_UP:
    it kills it (here a `sleep`, standing for a hung lldb) and ends."""
    from pydbgauto.drivers import lldb_watchdog as guardian
    from pydbgauto.drivers.lldb import WATCHDOG_PATH

    fake_lldb = subprocess.Popen(["sleep", "30"])
    try:
        done = subprocess.run(
            [sys.executable, WATCHDOG_PATH, str(fake_lldb.pid)], input="pid 1\nbye\n", text=True, timeout=10
        )
        assert done.returncode == 0 and fake_lldb.poll() is None
        monkeypatch.setattr(guardian, "FIRST_LOOK", 0.1)
        monkeypatch.setattr(guardian, "GIVE_UP", 0.5)
        started = time.monotonic()
        guardian.guard(fake_lldb.pid, None)
        assert fake_lldb.wait(timeout=5) == -9 and time.monotonic() - started < 4
    finally:
        if fake_lldb.poll() is None:
            fake_lldb.kill()
            fake_lldb.wait()
