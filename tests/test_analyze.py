"""pydbgauto analyze on real dumps: one pydbgauto wrote at a crash (with its capture record), and one that
``dotnet-dump collect`` took of the sample app waiting for input. No mocks: real lldb, SOS and dotnet-dump
(the tests marked lldb); the public name and the missing cdb reader are checked without them."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import pydbgauto

from pydbgauto import locate
from tests import real_parts
from pydbgauto.analysis import DumpAnalysis, analyze
from pydbgauto.cli import analyze as analyze_cli
from pydbgauto.errors import ConfigurationError, DumpVerificationError


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, ".build", "app-net10", "ThrowingApp")


@pytest.fixture(scope="module")
def real_tools() -> None:
    real_parts.require("analyze tests", APP)


@pytest.fixture(scope="module")
def crash_dump(real_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Tuple[str, Dict[str, Any]]:
    """A dump pydbgauto wrote at the sample app's unhandled exception, with its capture record beside it."""
    from pydbgauto.watching import watch

    folder = tmp_path_factory.mktemp("crash")
    result = watch(launch=[APP, "crash"], when=pydbgauto.second_chance(), dump_dir=str(folder), timeout=120)
    assert len(result.captures) == 1, str(result)
    capture = result.captures[0]
    assert capture.dump is not None and capture.record_path == capture.dump.path + ".json"
    with open(capture.record_path) as f:
        record = json.load(f)
    return capture.dump.path, record


@pytest.fixture(scope="module")
def collected_dump(real_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, int]]:
    """A full dump by ``dotnet-dump collect`` of the sample app in `wait` mode (no exception anywhere)."""
    from pydbgauto.readers.run import reader_env

    path = str(tmp_path_factory.mktemp("collect") / "wait.core")
    app = subprocess.Popen([APP, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout is not None and app.stdin is not None
        line = ""
        deadline = time.monotonic() + 60
        while not line.startswith("READY") and time.monotonic() < deadline:
            line = app.stdout.readline()
            if not line:
                break
        assert line.startswith("READY"), f"the sample app did not get ready: {line!r}"
        done = subprocess.run(
            [locate.find_dotnet_dump(), "collect", "-p", str(app.pid), "--type", "Full", "-o", path],
            capture_output=True,
            text=True,
            env=reader_env(),
            timeout=120,
        )
        assert done.returncode == 0 and os.path.getsize(path) > 0, done.stdout + done.stderr
        app.stdin.write("exit\n")
        app.stdin.flush()
        app.wait(timeout=60)
        yield path, app.pid
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


# ----- a dump pydbgauto wrote -------------------------------------------------------------------------


@pytest.mark.lldb
def test_pydbgauto_dump_shows_the_crash_and_matches_its_capture(crash_dump):
    path, record = crash_dump
    tid = record["event"]["thread_id"]
    address = record["event"]["exception_address"]
    a = analyze(path)
    assert isinstance(a, DumpAnalysis) and a.reader == "dotnet-dump analyze"
    assert a.matches_capture is True and a.differences == ()
    assert a.capture_record == path + ".json"
    assert [e.thread_id for e in a.exceptions] == [tid]
    found = a.exception_on(tid)
    assert found is not None and found.exception is not None
    assert found.exception.type == "System.InvalidOperationException"
    assert found.exception.address == address
    assert found.exception.message == "Unhandled: the service is going down"
    assert found.exception.frames[0].method.startswith("ThrowingApp.Program.Crash")
    assert found.listed_type == "System.InvalidOperationException" and found.listed_address == address
    # the thread table and the managed stacks
    assert a.threads is not None and tid in [t.os_id for t in a.threads.threads]
    stack = a.stack_of(tid)
    assert stack is not None
    assert [f.method for f in stack.frames if f.kind == "managed"][:2] == [
        "ThrowingApp.Program.Crash()",
        "ThrowingApp.Program.Main(System.String[])",
    ]
    assert {s.os_thread_id for s in a.stacks} == {t.os_id for t in a.threads.threads if t.dbg_id is not None}
    # pydbgauto's core carries createdump's diagnostic info page: dotnet-dump has nothing to warn about
    assert not any("doesn't contain memory" in w for w in a.warnings), a.warnings


@pytest.mark.lldb
def test_lldb_reader_finds_the_same(crash_dump):
    path, record = crash_dump
    a = analyze(path, reader="lldb")
    b = analyze(path, reader="dotnet-dump")
    assert a.reader == "lldb + SOS"
    assert a.matches_capture is True
    assert [(e.thread_id, e.type, e.address) for e in a.exceptions] == [
        (e.thread_id, e.type, e.address) for e in b.exceptions
    ]
    assert a.exceptions[0].exception is not None and a.exceptions[0].exception.message == (
        "Unhandled: the service is going down"
    )
    assert [s.os_thread_id for s in a.stacks] == [s.os_thread_id for s in b.stacks]


@pytest.mark.lldb
def test_a_record_that_disagrees_is_reported(crash_dump, tmp_path):
    path, record = crash_dump
    other = tmp_path / "same-dump.core"
    os.link(path, other)  # the same bytes, under another name: no 120 MB copy
    wrong = json.loads(json.dumps(record))
    wrong["event"]["exception_address"] += 0x40
    wrong["exception"]["type"] = "System.TimeoutException"
    (tmp_path / "same-dump.core.json").write_text(json.dumps(wrong))
    a = analyze(str(other))
    assert a.matches_capture is False
    assert len(a.differences) == 1
    assert (
        "System.TimeoutException" in a.differences[0]
        and "System.InvalidOperationException" in a.differences[0]
    )
    # the CLI says so with exit code 1
    assert _cli(["analyze", str(other)])[0] == 1


@pytest.mark.lldb
def test_a_record_for_another_file_is_reported(crash_dump, tmp_path):
    path, record = crash_dump
    other = tmp_path / "renamed.core"
    os.link(path, other)
    wrong = json.loads(json.dumps(record))
    wrong["dump"]["sha256"] = "0" * 64
    (tmp_path / "renamed.core.json").write_text(json.dumps(wrong))
    a = analyze(str(other))
    assert a.matches_capture is False
    assert any("sha256" in d for d in a.differences)


@pytest.mark.lldb
def test_an_unreadable_record_is_a_warning_not_a_failure(crash_dump, tmp_path):
    path, _ = crash_dump
    other = tmp_path / "x.core"
    os.link(path, other)
    (tmp_path / "x.core.json").write_text("{not json")
    a = analyze(str(other))
    assert a.matches_capture is None and a.capture_record is None
    assert any("not a readable capture record" in w for w in a.warnings)
    assert a.exceptions and a.exceptions[0].type == "System.InvalidOperationException"


# ----- a dump dotnet-dump collect took --------------------------------------------------------------


@pytest.mark.lldb
def test_collected_dump_lists_threads_and_stacks(collected_dump):
    path, pid = collected_dump
    a = analyze(path)
    assert a.matches_capture is None and a.capture_record is None
    assert a.exceptions == ()
    assert a.threads is not None and a.threads.thread_count == len(a.threads.threads) >= 2
    main = next(t for t in a.threads.threads if t.managed_id == 1)
    assert main.os_id == pid  # the main thread's OS id is the process id
    assert any(t.special == "Finalizer" for t in a.threads.threads)
    stack = a.stack_of(pid)
    assert stack is not None
    methods = [f.method for f in stack.frames if f.method]
    assert "ThrowingApp.Program.Wait()" in methods and "ThrowingApp.Program.Main(System.String[])" in methods
    assert any(f.source_file and f.source_file.endswith("Program.cs") for f in stack.frames)
    assert not a.warnings  # a runtime-made dump has what SOS needs
    text = str(a)
    assert "0 with an exception" in text and "ThrowingApp.Program.Wait()" in text


# ----- the command line -----------------------------------------------------------------------------


def _cli(argv: List[str]) -> Tuple[int, str, str]:
    import contextlib
    import io

    parser = argparse.ArgumentParser(prog="pydbgauto")
    analyze_cli.register(parser.add_subparsers(dest="subcommand"))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = args.run(args)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.lldb
def test_cli_json_text_and_html(crash_dump, tmp_path):
    path, record = crash_dump
    code, out, _ = _cli(["analyze", path, "--json"])
    assert code == 0
    data = json.loads(out)
    assert data["matches_capture"] is True and "raw" not in data
    assert data["exceptions"][0]["thread_id"] == record["event"]["thread_id"]
    assert data["exceptions"][0]["exception"]["type"] == "System.InvalidOperationException"
    assert (
        DumpAnalysis.from_dict(data).exceptions[0].exception.address == record["event"]["exception_address"]
    )

    code, out, _ = _cli(["analyze", path])
    assert code == 0
    assert "matches its capture record" in out and "Unhandled: the service is going down" in out

    page = tmp_path / "report.html"
    code, out, _ = _cli(["analyze", path, "--html", str(page)])
    assert code == 0 and str(page) in out
    _check_html(
        page.read_text(), must_have=["System.InvalidOperationException", "ThrowingApp.Program.Crash()"]
    )
    code, out, _ = _cli(["analyze", path, "--html", "-"])
    assert code == 0 and out.startswith("<!DOCTYPE html>")


class _Balance(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.open: List[str] = []
        self.text: List[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_html(page: str, must_have: List[str]) -> None:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    text = "".join(parser.text)
    for item in must_have:
        assert item in text


@pytest.mark.lldb
@pytest.mark.usefixtures("real_tools")
def test_cli_exit_codes_for_bad_input(tmp_path, monkeypatch):
    code, _, err = _cli(["analyze", str(tmp_path / "missing.core")])
    assert code == 2 and "does not exist" in err
    junk = tmp_path / "junk.core"
    junk.write_bytes(os.urandom(4096))
    code, _, err = _cli(["analyze", str(junk)])
    assert code == 5 and "could not read" in err
    empty = tmp_path / "empty.core"
    empty.write_bytes(b"")
    assert _cli(["analyze", str(empty)])[0] == 5
    monkeypatch.setenv("PYDBGAUTO_SOS_PLUGIN", "/nonexistent/libsosplugin.so")
    code, _, err = _cli(["analyze", str(junk), "--reader", "lldb"])
    assert code == 4 and "dotnet tool install dotnet-dump" in err


@pytest.mark.lldb
@pytest.mark.usefixtures("real_tools")
def test_api_refuses_bad_arguments(tmp_path):
    with pytest.raises(ConfigurationError):
        analyze(str(tmp_path))  # a folder
    with pytest.raises(ConfigurationError):
        analyze(str(tmp_path / "x"), reader="gdb")
    not_a_dump = tmp_path / "text.core"
    not_a_dump.write_text("hello\n")
    with pytest.raises(DumpVerificationError):
        analyze(str(not_a_dump), reader="lldb")


@pytest.mark.lldb
def test_notebook_views(crash_dump):
    path, _ = crash_dump
    a = analyze(path)
    _check_html(
        "<html><body>" + a._repr_html_() + "</body></html>",
        must_have=["System.InvalidOperationException", "matches its capture record"],
    )
    md = a._repr_markdown_()
    assert "InvalidOperationException" in md and "<script" not in md


def test_public_name_stays_the_function_after_the_submodule_is_imported():
    code = "import pydbgauto, pydbgauto.analysis, pydbgauto.cli.analyze; print(callable(pydbgauto.analyze))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert done.stdout.strip() == "True", done.stderr


def test_public_name_before_the_submodule_is_imported():
    code = (
        "import sys, pydbgauto; f = pydbgauto.analyze; "
        "print(f is sys.modules['pydbgauto.analysis'].analyze)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert done.stdout.strip() == "True", done.stderr


def test_cdb_reader_is_missing_here():
    if shutil.which("cdb") or shutil.which("cdb.exe"):
        pytest.skip("a cdb is installed here")
    with pytest.raises(pydbgauto.DebuggerNotFoundError, match="Debugging Tools for Windows"):
        analyze(__file__, reader="cdb")


def test_a_message_the_reader_stripped_of_non_ascii_is_shown_as_recorded():
    from pydbgauto.analysis import ThreadException, _with_recorded_message
    from pydbgauto.models import ManagedException

    recorded = ManagedException(address=0x10, type="X", message='nested één ☃ "q"')
    stripped = ThreadException(
        thread_id=1, exception=ManagedException(address=0x10, type="X", message='nested n  "q"')
    )
    warnings: List[str] = []
    shown = _with_recorded_message(stripped, recorded, warnings)
    assert shown.exception is not None and shown.exception.message == 'nested één ☃ "q"'
    assert len(warnings) == 1 and "non-ASCII" in warnings[0]
    other = ThreadException(thread_id=1, exception=ManagedException(address=0x10, type="X", message="else"))
    elsewhere = ThreadException(
        thread_id=1, exception=ManagedException(address=0x20, type="X", message='nested n  "q"')
    )
    assert _with_recorded_message(other, recorded, []) is other  # a real difference stays visible
    assert _with_recorded_message(elsewhere, recorded, []) is elsewhere  # another object
