"""Issue 12, the pure and local parts: pids refused up front, sizes, cores that are all or nothing. No
debugger is started here. (The watch's private files and predicate deadline are tested in tests/watching/.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import pydbgauto as pda
from pydbgauto import coredump, processes
from pydbgauto.cli.watch import _size_arg


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
    from pydbgauto.drivers.lldb import watchdog as guardian
    from pydbgauto.drivers.lldb.process import WATCHDOG_PATH

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
