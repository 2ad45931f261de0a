"""The cdb driver against a REAL cdb.exe and the sample app (examples/ThrowingApp).

Marked ``cdb``: each test skips itself unless this is Windows with Debugging Tools for Windows
(found as the driver finds it: CDB_PATH, PATH, Windows Kits, WinDbg Store) and the sample app
is built (``dotnet build examples/ThrowingApp -f net8.0``, or PYDBGAUTO_SAMPLE_APP=<ThrowingApp.exe>).
The scenarios are the Linux integration scenarios: first-chance, crash, wait (attach).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from pydbgauto.drivers.base import StopKind, Target
from pydbgauto.drivers.cdb import CdbDriver, verify_dump_with_cdb
from pydbgauto.drivers.cdb_locate import find_cdb
from pydbgauto.errors import DebuggerNotFoundError
from pydbgauto.sos.clrstack import parse_clrstack
from pydbgauto.sos.pe import parse_pe

pytestmark = pytest.mark.cdb

ROOT = Path(__file__).resolve().parents[2]


def _cdb() -> str:
    if sys.platform != "win32":
        pytest.skip("needs Windows with Debugging Tools for Windows (cdb.exe)")
    try:
        return find_cdb()
    except DebuggerNotFoundError as e:
        pytest.skip(str(e))


def _app() -> str:
    given = os.environ.get("PYDBGAUTO_SAMPLE_APP")
    if given and os.path.isfile(given):
        return given
    for config in ("Debug", "Release"):
        exe = ROOT / "examples" / "ThrowingApp" / "bin" / config / "net8.0" / "ThrowingApp.exe"
        if exe.is_file():
            return str(exe)
    pytest.skip("sample app not built: dotnet build examples/ThrowingApp -f net8.0")


@pytest.fixture
def cdb() -> str:
    return _cdb()


@pytest.fixture
def app(cdb: str) -> str:
    return _app()


def _driver(target: Target, cdb: str) -> CdbDriver:
    return CdbDriver(target, cdb_path=cdb, command_timeout=120, startup_timeout=300)


def _next(d: CdbDriver, *kinds: StopKind, limit: int = 20) -> object:
    for _ in range(limit):
        stop = d.resume(120)
        if stop.kind in kinds:
            return stop
    raise AssertionError(f"no stop of kind {kinds} in {limit} resumes")


def test_launch_first_chance_pe_clrstack_and_dump(cdb: str, app: str, tmp_path: Path) -> None:
    d = _driver(Target(argv=(app, "first-chance")), cdb)
    d.start()
    try:
        assert d.runtime == "coreclr"
        d.arm_clr_exceptions()
        stop = _next(d, StopKind.FIRST_CHANCE)
        assert stop.kind is StopKind.FIRST_CHANCE  # type: ignore[attr-defined]
        exc = parse_pe(d.execute(d.sos_prefix + "pe"))
        assert exc is not None and exc.type == "System.InvalidOperationException"
        assert exc.message == "The order queue timeout expired"
        stack = parse_clrstack(d.execute(d.sos_prefix + "clrstack"))
        assert any("ThrowInvalidOperation" in f.call_site for f in stack.frames)
        dump = tmp_path / "first-chance.dmp"
        d.write_dump(str(dump), 600)
        assert dump.stat().st_size > 1_000_000
    finally:
        d.execute(".kill", allow_dangerous=True)  # a launched target: end it ourselves
        d.close()
    assert "Last event" in verify_dump_with_cdb(str(dump), cdb_path=cdb)


def test_type_filter_skips_other_exceptions_inside_cdb(cdb: str, app: str) -> None:
    d = _driver(Target(argv=(app, "first-chance")), cdb)
    d.start()
    try:
        d.set_type_filter(["System.ArgumentException"], derived=True)
        _next(d, StopKind.FIRST_CHANCE)
        exc = parse_pe(d.execute("!pe"))
        assert exc is not None and exc.type == "ThrowingApp.OrderRejectedException"
    finally:
        d.execute(".kill", allow_dangerous=True)
        d.close()


def test_crash_second_chance_then_exit(cdb: str, app: str) -> None:
    d = _driver(Target(argv=(app, "crash")), cdb)
    d.start()
    try:
        d.arm_clr_exceptions()
        _next(d, StopKind.FIRST_CHANCE)
        _next(d, StopKind.SECOND_CHANCE)
        exc = parse_pe(d.execute("!pe"))
        assert exc is not None and exc.message == "Unhandled: the service is going down"
        _next(d, StopKind.EXIT)
    finally:
        d.close()


@pytest.fixture
def waiting_app(app: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([app, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # PID ...
    assert proc.stdout.readline().startswith("READY")
    yield proc
    if proc.poll() is None:
        proc.kill()


def test_attach_stop_and_leave_the_target_alive(cdb: str, waiting_app: subprocess.Popen[str]) -> None:
    d = _driver(Target(pid=waiting_app.pid), cdb)
    d.start()
    try:
        assert d.pid == waiting_app.pid
        d.arm_clr_exceptions()
        assert waiting_app.stdin is not None
        waiting_app.stdin.write("invalid-op\n")
        waiting_app.stdin.flush()
        _next(d, StopKind.FIRST_CHANCE)
    finally:
        d.close()
    assert waiting_app.stdin is not None and waiting_app.stdout is not None
    waiting_app.stdin.write("exit\n")
    waiting_app.stdin.flush()
    assert waiting_app.wait(60) == 0  # detached with qd: the target lives on and ends normally
