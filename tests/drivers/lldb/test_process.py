"""How LldbProcess ends an lldb that does not quit: it says what the threads were doing and never raises."""

import logging
import signal
import subprocess

from pydbgauto.drivers.lldb import process


def test_states_names_a_stopped_thread_and_where_it_waits():
    child = subprocess.Popen(["sleep", "30"])
    try:
        child.send_signal(signal.SIGSTOP)
        for _ in range(100):
            if process._states(child.pid).startswith("1 T"):
                break
            subprocess.run(["sleep", "0.01"])
        described = process._states(child.pid)
        assert described.startswith("1 T;") and f"{child.pid} T in " in described
    finally:
        child.kill()
        child.wait()
    assert process._states(child.pid) == "gone"


def test_wait_killed_returns_once_the_process_is_gone(caplog):
    child = subprocess.Popen(["sleep", "30"])
    child.kill()
    with caplog.at_level(logging.WARNING):
        process._wait_killed(child)
    assert child.returncode == -signal.SIGKILL and not caplog.records


def test_wait_killed_tells_and_goes_on_when_the_process_stays(monkeypatch, caplog):
    """A killed lldb held in uninterruptible I/O cannot be made to go: close must go on, saying why. The
    process here is a plain sleep that is never killed, standing in for one that cannot be (a test double:
    a thread in D state cannot be made on purpose)."""
    monkeypatch.setattr(process, "KILLED_WARN", 0.2)
    monkeypatch.setattr(process, "KILLED_WAIT", 0.5)
    child = subprocess.Popen(["sleep", "30"])
    try:
        with caplog.at_level(logging.WARNING):
            process._wait_killed(child)
        messages = [r.getMessage() for r in caplog.records]
        assert "still there 0.2 s after SIGKILL (1 S)" in messages[0]
        assert "did not end within 0.5 s of SIGKILL" in messages[1]
    finally:
        child.kill()
        child.wait()


def test_program_path_searches_the_targets_path_as_a_shell_would(tmp_path):
    import os
    import stat

    import pytest

    from pydbgauto.errors import TargetError

    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    assert process.program_path("mytool", f"/nonexistent:{tool.parent}") == str(tool)
    assert process.program_path(str(tool), None) == str(tool)
    with pytest.raises(TargetError, match=r"cannot launch mytool: not found on PATH \(/nonexistent\)"):
        process.program_path("mytool", "/nonexistent")
    with pytest.raises(TargetError, match="cannot launch /nonexistent/App: no such file"):
        process.program_path("/nonexistent/App", os.environ.get("PATH"))
    (tmp_path / "data").write_text("")
    with pytest.raises(TargetError, match="not an executable file"):
        process.program_path(str(tmp_path / "data"), None)
