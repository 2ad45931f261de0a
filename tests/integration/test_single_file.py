"""Single-file .NET apps (``PublishSingleFile``, self-contained): the runtime is linked into the executable,
no libcoreclr.so, and the app carries no DAC (pydbgauto/single_file.py, drivers/lldb/runtime_module.py).
FilterApp published that way for .NET 8, 9 and 10: attached and watched as any other (the in-target filter,
the dump reopened by dotnet-dump, the runtime's count), refused at launch and without a DAC with words that
say what to do, the target left running either way."""

from __future__ import annotations

import os
from typing import Any, Dict

import pytest

import pydbgauto as pda
from pydbgauto import Session
from pydbgauto.errors import PydbgautoError

from .conftest import WaitingApp, tracer_of
from .test_fast_filter import IOE, publish_filterapp, watch_while

pytestmark = pytest.mark.lldb


@pytest.fixture(params=["net8", "net9", "net10"])
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def single_file_builds(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    return {"work": str(tmp_path_factory.mktemp("single-file"))}


@pytest.fixture
def single_file_app(runtime: str, single_file_builds: Dict[str, str]) -> str:
    if runtime not in single_file_builds:
        options = ["-r", "linux-x64", "--self-contained", "-p:PublishSingleFile=true"]
        app = publish_filterapp(single_file_builds["work"], runtime, options)
        assert not os.path.exists(os.path.join(os.path.dirname(app), "libcoreclr.so"))  # inside the app
        single_file_builds[runtime] = app
    return single_file_builds[runtime]


@pytest.fixture
def waiting_single_file(single_file_app: str) -> Any:
    app = WaitingApp(single_file_app)
    yield app
    app.finish()


def test_a_single_file_app_is_watched_as_any_other(waiting_single_file, runtime, tmp_path, no_lldb_left):
    app = waiting_single_file
    seen: Dict[str, Any] = {}
    result = watch_while(
        app,
        tmp_path,
        pda.exception_type(IOE),
        ["storm 100", "match"],
        on_armed=lambda data: seen.update(data),
    )
    assert result.ended == "max-dumps" and result.filtered_in_debugger
    assert seen["versions"]["runtime"].startswith(runtime[3:] + ".")  # from the DAC found for its build
    assert result.events_seen <= 2  # the storm's type stopped once at most: the stub let the rest go
    capture = result.captures[0]
    assert capture.exception.type == IOE and capture.exception.message == "match"
    assert any("Program" in (f.method or "") for f in capture.stack.frames)
    assert capture.dump is not None and capture.dump.verified, capture.dump  # dotnet-dump, given the DAC
    assert result.thrown == (100 if runtime == "net8" else 101)  # .NET 8 counts the match after its stop
    assert tracer_of(app.pid) == 0 and app.proc.poll() is None


def test_a_single_file_app_is_not_launched_unwatched(single_file_app, tmp_path, no_lldb_left):
    with pytest.raises(PydbgautoError, match="single-file .NET app.*attach"):
        Session.launch([single_file_app, "mixed", "1"], output_dir=str(tmp_path))  # refused before it runs


def test_a_single_file_app_without_its_dac_says_what_to_install(
    waiting_single_file, tmp_path, monkeypatch, no_lldb_left
):
    monkeypatch.setenv("PYDBGAUTO_DAC_DIR", str(tmp_path))  # searched alone: no DAC there
    with pytest.raises(
        PydbgautoError, match=r"single-file \.NET app.*libmscordaccore\.so.*PYDBGAUTO_DAC_DIR"
    ):
        Session.attach(pid=waiting_single_file.pid)
    assert tracer_of(waiting_single_file.pid) == 0  # left running, untraced
    waiting_single_file.send("storm 3")
    assert waiting_single_file.wait_for_line("OK storm 3", 60)
