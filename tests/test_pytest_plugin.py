"""The pytest plugin: the dotnet_watch fixture, its failure report, the needs_debugger marker, the options.

Tests that run the real lldb + SOS on the sample app are marked ``lldb``; they write the inner test
files with pytester and run them in a fresh pytest process loading ``-p pydbgauto.pytest_plugin``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from typing import List

import pytest

import pydbgauto as pda
from pydbgauto.errors import DebuggerTimeoutError, PydbgautoError
from pydbgauto.models import (
    CaptureRecord,
    DecisionRecord,
    DumpRecord,
    ManagedException,
    ManagedStack,
    StackFrame,
    StopEvent,
)
from pydbgauto.pytest_plugin import CaptureList, Watcher, debugger_unavailable, describe_captures

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, ".build", "app-net8", "ThrowingApp")
PLUGIN = ("-p", "pydbgauto.pytest_plugin")


def _missing() -> List[str]:
    missing = [] if os.access(APP, os.X_OK) else [f"sample app {APP} (run scripts/setup)"]
    why = debugger_unavailable("lldb")
    if why:
        missing.append(why)
    return missing


needs_real_parts = pytest.mark.skipif(bool(_missing()), reason="; ".join(_missing()))


def _subprocess_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest process imports pydbgauto from this checkout, wherever pytester puts it."""
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", ROOT + (os.pathsep + path if path else ""))


def _dumps(folder: str) -> List[str]:
    found = []
    for base, _, files in os.walk(folder):
        found += [os.path.join(base, f) for f in files if not f.endswith((".json", ".jsonl"))]
    return sorted(found)


# ----- without a debugger -----------------------------------------------------------------------------


def _capture(n: int = 1, dumped: bool = True) -> CaptureRecord:
    exc = ManagedException(
        address=0x7F00, type="System.InvalidOperationException", message="The order queue timeout expired"
    )
    stack = ManagedStack(
        os_thread_id=0x1A2B,
        frames=(
            StackFrame(
                sp=0x10,
                ip=0x20,
                call_site="ThrowingApp.Program.ThrowInvalidOperation()",
                method="ThrowingApp.Program.ThrowInvalidOperation()",
            ),
            StackFrame(sp=0x30, ip=0x40, call_site="ThrowingApp.Program.Main(System.String[])"),
        ),
    )
    event = StopEvent(
        kind="first-chance",
        sequence=n,
        pid=42,
        thread_id=0x1A2B,
        exception_address=0x7F00,
        exception=exc,
        stack=stack,
    )
    dump = (
        DumpRecord(path=f"/dumps/app-{n}.core", size=2_000_000, seconds=1.5, verified=True)
        if dumped
        else None
    )
    return CaptureRecord(
        event=event,
        decision=DecisionRecord(action="dump", reason="matched", n=n),
        exception=exc,
        stack=stack,
        dump=dump,
        dump_error=None if dumped else "disk full",
        record_path=f"/dumps/app-{n}.core.json",
    )


class _FakeWatcher(Watcher):
    """A Watcher with recorded contents, for the report text (never started)."""

    def __init__(self, captures: List[CaptureRecord], extra: List[StopEvent]) -> None:
        super().__init__(["/bin/app", "arg"], when=None)
        self._captures = list(captures)
        self._decisions = [(c.event, c.decision) for c in captures]
        self._decisions += [
            (e, DecisionRecord(action="skip", reason="limit", detail="max_dumps=1")) for e in extra
        ]


def test_report_text_has_exception_stack_and_dump() -> None:
    extra = StopEvent(
        kind="first-chance",
        sequence=5,
        exception=ManagedException(address=0x8F00, type="System.InvalidOperationException", message="again"),
    )
    text = describe_captures([_FakeWatcher([_capture(1), _capture(2, dumped=False)], [extra])])
    assert "watch of /bin/app arg: 2 capture(s), 3 matching exception(s)" in text
    assert (
        "capture 1: System.InvalidOperationException: The order queue timeout expired -> /dumps/app-1.core"
        in text
    )
    assert "ThrowingApp.Program.ThrowInvalidOperation()" in text
    assert "dump: /dumps/app-1.core (2.0 MB, 1.50 s, verified)" in text
    assert "dump: none (disk full)" in text
    assert "record: /dumps/app-2.core.json" in text
    assert "matched, not dumped: #5 first-chance System.InvalidOperationException" in text
    assert "[skip (limit): max_dumps=1]" in text


def test_capture_list_compares_as_a_list_and_reads_short() -> None:
    empty = CaptureList()
    assert empty == [] and not empty
    one = CaptureList([_capture(1)])
    assert one != []
    assert repr(one) == (
        "[capture 1: System.InvalidOperationException: The order queue timeout expired "
        "-> /dumps/app-1.core]"
    )


@pytest.mark.parametrize(
    "args, kwargs, words",
    [
        ((), {}, "exactly one target"),
        ((["/bin/app"],), {"pid": 1}, "exactly one target"),
        (("/bin/app",), {}, "list of arguments"),
        ((["/bin/app"],), {"poll_interval": 0}, "poll_interval"),
        ((["/bin/app"],), {"on_event": print}, "sets on_event= itself"),
    ],
)
def test_watcher_refuses_bad_arguments(args, kwargs, words) -> None:
    with pytest.raises(PydbgautoError, match=words):
        Watcher(*args, **kwargs)


def test_configuration_errors_reach_the_test_at_enter(tmp_path) -> None:
    """watch() validates before any debugger starts; the error comes out of `with`, not a thread."""
    with pytest.raises(pda.ConfigurationError, match="does not exist"):
        with Watcher(["/bin/true"], dump_dir=str(tmp_path / "missing")):
            pytest.fail("the block must not run")


def test_unknown_debugger_is_reported_unavailable() -> None:
    assert "unknown debugger" in (debugger_unavailable("gdb") or "")


def test_options_and_marker_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--help")
    result.stdout.fnmatch_lines(["*--pydbgauto-dump-dir=DIR*", "*--pydbgauto-debugger*"])
    result = pytester.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.needs_debugger:*"])


def test_marker_skips_without_sos(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDBGAUTO_SOS_PLUGIN", "/nonexistent")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.needs_debugger
        def test_needs():
            raise AssertionError("must have been skipped")

        def test_plain():
            pass
    """
    )
    result = pytester.runpytest(*PLUGIN, "-rs", "--pydbgauto-debugger=lldb")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no debugger*PYDBGAUTO_SOS_PLUGIN=/nonexistent does not exist*"])


def test_marker_skips_a_debugger_of_another_platform(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.needs_debugger
        def test_needs():
            raise AssertionError("must have been skipped")
    """
    )
    result = pytester.runpytest(*PLUGIN, "-rs", "--pydbgauto-debugger=cdb")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*cdb runs only on Windows*"])


# ----- with the real lldb + SOS and the sample app ----------------------------------------------------


@pytest.mark.lldb
@needs_real_parts
def test_marker_runs_the_test_when_the_debugger_is_there(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.needs_debugger
        def test_needs():
            pass
    """
    )
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


@pytest.mark.lldb
@needs_real_parts
def test_a_watch_that_catches_nothing_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    _subprocess_env(monkeypatch)
    dumps = tmp_path / "dumps"
    pytester.makepyfile(
        f"""
        import pydbgauto as pda
        import pytest

        APP = {APP!r}

        @pytest.mark.needs_debugger
        def test_never_divides_by_zero(dotnet_watch):
            never = pda.exception_type("System.DivideByZeroException")
            with dotnet_watch([APP, "first-chance"], when=never) as w:
                assert w.running
            assert w.captures == []
            assert w.matched == []
            assert w.result.ended == "exit" and w.exit_status in (0, None)  # None: lldb lost it
            # every throw was seen (and let pass), then the exit
            kinds = [e.kind for e, _ in w.decisions]
            assert kinds.count("first-chance") >= 6 and kinds[-1] == "exit", kinds
    """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, f"--pydbgauto-dump-dir={dumps}", timeout=600)
    result.assert_outcomes(passed=1)
    assert _dumps(str(dumps)) == []


@pytest.mark.lldb
@needs_real_parts
def test_a_watch_that_catches_fails_with_the_exception_in_the_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    _subprocess_env(monkeypatch)
    dumps = tmp_path / "dumps"
    pytester.makepyfile(
        test_checkout=f"""
        import pydbgauto as pda

        APP = {APP!r}

        def test_checkout_never_throws_ioe(dotnet_watch):
            ioe = pda.exception_type("System.InvalidOperationException")
            with dotnet_watch([APP, "first-chance"], when=ioe) as w:
                pass
            assert w.captures == []
    """
    )
    result = pytester.runpytest_subprocess(
        *PLUGIN, f"--pydbgauto-dump-dir={dumps}", "--junitxml=junit.xml", timeout=600
    )
    result.assert_outcomes(failed=1)
    written = _dumps(str(dumps))
    assert len(written) == 1, written
    # the dump is in a folder named after the test
    assert "test_checkout_never_throws_ioe" in os.path.basename(os.path.dirname(written[0]))
    out = result.stdout.str()
    section = out[out.index("pydbgauto captures") :]
    for expected in (
        "System.InvalidOperationException",
        "The order queue timeout expired",
        "ThrowingApp.Program.ThrowInvalidOperation",
        f"dump: {written[0]}",
        "verified",
    ):
        assert expected in section, expected
    # the assertion itself reads short, not as a wall of attrs reprs
    result.stdout.fnmatch_lines(
        [
            "*1 capture(s)*",
            "*capture 1: System.InvalidOperationException: The order queue " "timeout expired -> *",
        ]
    )
    assert "CaptureRecord(" not in out
    # the dump path is a user property in the JUnit XML
    with open(pytester.path / "junit.xml", encoding="utf-8") as f:
        assert f'name="pydbgauto_dump" value="{written[0]}"' in f.read()


class _WaitingApp:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [APP, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.wait_for("READY", 60), self.lines

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(prefix) for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()


def _tracer(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


@pytest.mark.lldb
@needs_real_parts
def test_attached_watch_stops_at_the_end_of_the_block_and_leaves_the_target_running(tmp_path) -> None:
    app = _WaitingApp()
    try:
        ioe = pda.exception_type("System.InvalidOperationException")
        with Watcher(pid=app.proc.pid, when=ioe, dump_dir=str(tmp_path), max_dumps=2) as w:
            app.send("custom")  # not matched
            app.send("invalid-op")
            assert app.wait_for("OK invalid-op", 120), app.lines
        assert [c.exception.type for c in w.captures] == ["System.InvalidOperationException"]
        assert w.captures[0].dump is not None and w.captures[0].dump.verified
        assert w.result is not None and w.result.ended == "stopped"
        assert [e.exception_type for e, d in w.decisions] == [
            "ThrowingApp.OrderRejectedException",
            "System.InvalidOperationException",
        ]
        # detached: the app runs on, untraced, and still answers
        assert app.proc.poll() is None and _tracer(app.proc.pid) == 0
        app.send("invalid-op")
        app.send("exit")
        assert app.proc.wait(60) == 0
        assert sum(line.startswith("THROW") for line in app.lines) == 3
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait()


@pytest.mark.lldb
@needs_real_parts
def test_a_launched_program_that_outlives_the_exit_timeout_is_killed(tmp_path) -> None:
    started = time.monotonic()
    with pytest.raises(DebuggerTimeoutError, match="did not finish within 3"):
        with Watcher([APP, "quiet", "60"], dump_dir=str(tmp_path), exit_timeout=3) as w:
            pid = w.target_pid
    assert pid is not None
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ")[1][0] in "ZX":
                break
        time.sleep(0.1)
    else:
        assert not os.path.exists(f"/proc/{pid}"), "the launched program is still running"
    assert time.monotonic() - started < 50
    assert not w.running and w.captures == []


def test_report_of_a_watch_that_saw_nothing_is_one_line() -> None:
    text = describe_captures([_FakeWatcher([], [])])
    assert text == "watch of /bin/app arg: 0 capture(s), 0 matching exception(s)"
