"""pydbgauto run by another Python than Debian's: lldb's embedded Python must still load the agent, or the
caller must hear why within seconds (issue 13, item 1). Real lldb + SOS, the real sample app."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time

import attr
import pytest

import pydbgauto.drivers.lldb.process as lldb_process
from pydbgauto import AgentLoadError, ConfigurationError
from pydbgauto.session import Session
from tests.integration.conftest import APPS, ROOT

pytestmark = pytest.mark.lldb


def _other_python() -> str:
    """A python3 that is not Debian's when there is one (pyenv, a build in /usr/local), else Debian's."""
    candidates = [shutil.which("python3") or ""] + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))
    )
    for candidate in candidates:
        if candidate and os.path.realpath(candidate) != os.path.realpath("/usr/bin/python3"):
            done = subprocess.run([candidate, "-c", "import venv"], capture_output=True)
            if done.returncode == 0:
                return candidate
    return "/usr/bin/python3"


def _attrs_only_dir(tmp_path) -> str:
    """A folder holding only a link to this interpreter's attrs: the venv gets attrs and nothing else."""
    folder = tmp_path / "only-attrs"
    folder.mkdir()
    os.symlink(os.path.dirname(os.path.abspath(attr.__file__)), folder / "attr")
    return str(folder)


def test_watch_from_a_venv_of_another_python(tmp_path, no_lldb_left):
    venv = tmp_path / "venv"
    subprocess.run([_other_python(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python3")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # as if the venv were activated
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{_attrs_only_dir(tmp_path)}"
    started = time.monotonic()
    done = subprocess.run(
        [python, "-m", "pydbgauto", "watch", "--type", "System.InvalidOperationException", "--no-verify"]
        + ["--dump-dir", str(dumps), "--timeout", "90", "--", APPS["net10"], "invalid-op"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=str(tmp_path),
    )
    assert done.returncode == 0, (done.stdout, done.stderr, time.monotonic() - started)
    assert "-> dump" in done.stdout
    cores = glob.glob(str(dumps / "ThrowingApp_*.core"))
    assert len(cores) == 1 and os.path.getsize(cores[0]) > 1 << 20


def test_a_fake_python3_first_on_path_does_not_matter(tmp_path, monkeypatch, no_lldb_left):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\necho not a python >&2\nexit 1\n")
    (fake / "python3").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "no-such-home"))  # would break lldb's Python
    with Session.launch([APPS["net10"], "invalid-op"], kill_on_close=True) as s:
        s.break_on_clr_exceptions()
        event = s.wait_for_event(60)
        environ = open(f"/proc/{s.pid}/environ", "rb").read().split(b"\0")
    assert event.exception is not None and event.exception.type == "System.InvalidOperationException"
    # the launched target gets the caller's PATH and PYTHONHOME back, not lldb's
    assert f"PATH={os.environ['PATH']}".encode() in environ
    assert f"PYTHONHOME={tmp_path / 'no-such-home'}".encode() in environ


def test_an_lldb_python_without_attrs_fails_fast_and_says_why(tmp_path, monkeypatch, no_lldb_left):
    """Take away both remedies (lldb's own interpreter first on PATH, attrs on the agent's path) and put a
    venv without attrs first on PATH: lldb's Python then cannot import attrs. The caller hears it within
    seconds, not after the 120 s start-up limit."""
    venv = tmp_path / "venv"
    subprocess.run([_other_python(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(lldb_process, "lldb_environment", lambda path, base, private: (dict(base), None))
    monkeypatch.setattr(lldb_process, "agent_path_line", lambda: "script pass")
    started = time.monotonic()
    with pytest.raises(AgentLoadError) as caught:
        Session.launch([APPS["net10"], "invalid-op"], startup_timeout=120)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "No module named 'attr'" in message
    assert "apt-get install python3-attr" in message and "PYDBGAUTO_LLDB_PYTHON" in message


def test_a_bad_lldb_python_setting_is_refused_before_lldb_starts(monkeypatch, no_lldb_left):
    monkeypatch.setenv("PYDBGAUTO_LLDB_PYTHON", "/no/such/python3.11")
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="PYDBGAUTO_LLDB_PYTHON=/no/such/python3.11"):
        Session.launch([APPS["net10"], "invalid-op"])
    assert time.monotonic() - started < 5
