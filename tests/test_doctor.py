"""pydbgauto doctor on this machine: healthy (with a real attach to the sample app), and with parts hidden."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from typing import Callable, List, Tuple

import pytest

from pydbgauto import doctor, locate
from pydbgauto.doctor import Check, run_checks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, ".build", "app-net10", "ThrowingApp")
NAMES = ["lldb", "lldb python", "sos", "dotnet-dump", "ptrace", "disk", "attach"]


@pytest.fixture(scope="module")
def set_up_machine() -> None:
    try:
        locate.find_lldb()
        locate.find_sos_plugin()
        locate.find_dotnet_dump()
    except Exception as e:  # noqa: BLE001 - whatever is missing
        pytest.skip(f"doctor tests need a set-up machine (scripts/setup): {e}")
    if not os.access(APP, os.X_OK):
        pytest.skip(f"the sample app {APP} is not built (scripts/setup)")


def needs_lldb(test: Callable[..., None]) -> Callable[..., None]:
    """The real lldb, SOS, dotnet-dump and the sample app (the checks below them run without)."""
    return pytest.mark.lldb(pytest.mark.usefixtures("set_up_machine")(test))


def _cli(argv: List[str]) -> Tuple[int, str]:
    parser = argparse.ArgumentParser(prog="pydbgauto")
    doctor.register(parser.add_subparsers(dest="subcommand"))
    args = parser.parse_args(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = args.run(args)
    return code, out.getvalue()


@needs_lldb
def test_healthy_machine_with_a_real_attach(tmp_path):
    code, out = _cli(["doctor", "--sample-app", APP, "--dump-dir", str(tmp_path), "--json"])
    data = json.loads(out)
    assert code == 0 and data["ok"] is True, out
    checks = {c["name"]: c for c in data["checks"]}
    assert list(checks) == NAMES
    assert all(c["ok"] and c["fix"] is None for c in checks.values())
    assert "lldb version 19" in checks["lldb"]["detail"]
    assert checks["sos"]["detail"].startswith(locate.find_sos_plugin())
    assert locate.DOTNET_DUMP_VERSION in checks["dotnet-dump"]["detail"]
    assert str(tmp_path) in checks["disk"]["detail"]
    assert (
        "clrthreads listed" in checks["attach"]["detail"]
        and "exited with status 0" in checks["attach"]["detail"]
    )
    if not os.path.exists("/proc/sys/kernel/yama/ptrace_scope"):
        assert "absent" in checks["ptrace"]["detail"]


@needs_lldb
def test_text_output(tmp_path):
    code, out = _cli(["doctor", "--dump-dir", str(tmp_path)])
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "ready"
    assert [line.split("]")[0] for line in lines[:-1]] == ["[ok"] * len(NAMES)
    assert "not tried" in lines[NAMES.index("attach")]


@needs_lldb
def test_sos_hidden_fails_and_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("PYDBGAUTO_SOS_PLUGIN", "/nonexistent/libsosplugin.so")
    code, out = _cli(["doctor", "--sample-app", APP, "--dump-dir", str(tmp_path), "--json"])
    assert code == 1
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    sos = checks["sos"]
    assert sos["ok"] is False and "/nonexistent/libsosplugin.so" in sos["detail"]
    assert "unset PYDBGAUTO_SOS_PLUGIN" in sos["fix"]
    assert f"dotnet tool install dotnet-dump --version {locate.DOTNET_DUMP_VERSION}" in sos["fix"]
    assert checks["attach"]["ok"] is False and "not tried" in checks["attach"]["detail"]
    assert checks["lldb"]["ok"] and checks["dotnet-dump"]["ok"]  # only what is broken is reported


@needs_lldb
def test_sos_hidden_through_the_command_line_in_a_subprocess(tmp_path):
    """The same through a fresh interpreter (run_checks reads the environment it was started with)."""
    env = dict(os.environ, PYTHONPATH=ROOT, PYDBGAUTO_SOS_PLUGIN="/nonexistent/libsosplugin.so")
    code = (
        "import sys, pydbgauto.doctor as d; c = d.run_checks(dump_dir=sys.argv[1]); "
        "print([x.name for x in c if not x.ok])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip() == "['sos']", done.stderr


@needs_lldb
def test_missing_dump_folder_and_bad_sample_app(tmp_path):
    checks = run_checks(sample_app=str(tmp_path / "NoSuchApp"), dump_dir=str(tmp_path / "nope"))
    by_name = {c.name: c for c in checks}
    assert by_name["disk"].ok is False and by_name["disk"].fix == f"mkdir -p {tmp_path / 'nope'}"
    assert by_name["attach"].ok is False and "not an executable" in by_name["attach"].detail
    assert "FAIL" in str(by_name["disk"]) and "fix: mkdir -p" in str(by_name["disk"])


def test_check_model():
    check = Check("x", False, "broken", "do this")
    assert check.to_dict() == {"name": "x", "ok": False, "detail": "broken", "fix": "do this"}
    assert str(Check("y", True, "fine")) == "[ok] y: fine"


def test_unknown_debugger_is_a_failed_check():
    (check,) = run_checks(debugger="gdb")
    assert check.ok is False


def test_cdb_is_missing_here(tmp_path):
    checks = run_checks(debugger="cdb", dump_dir=str(tmp_path))
    assert checks[0].name == "cdb" and checks[0].ok is False and "Debugging Tools" in (checks[0].fix or "")
