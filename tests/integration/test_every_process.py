"""Every process of a name, on the real lldb + SOS: three copies of the sample app, one started late.

Other tests on this machine run ThrowingApp too, so the app is copied to a temporary folder under a name
of its own (the apphost finds ThrowingApp.dll beside it whatever it is called), and that name is watched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import pytest

import pydbgauto as pda
from pydbgauto.multi import MultiWatchResult, watch_all
from tests.integration.conftest import ROOT, WaitingApp, renamed_app, throw_lines, tracer_of

pytestmark = pytest.mark.lldb

IOE = "System.InvalidOperationException"


@pytest.fixture
def unique_app(tmp_path: Any) -> Iterator[str]:
    yield renamed_app(tmp_path, "net10", "pdaE")


@pytest.fixture
def apps() -> Iterator[List[WaitingApp]]:
    started: List[WaitingApp] = []
    yield started
    for app in started:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait()


def json_watch(
    args: List[str], dump_dir: Any, on_line: Callable[[Dict[str, Any]], bool]
) -> Tuple[int, List[Dict[str, Any]], str]:
    """``pydbgauto watch ARGS --json --dump-dir DIR`` in a child process, each JSON line handed to ``on_line``
    as it comes (True: read no further); its exit code, the lines, and its stderr."""
    cli = subprocess.Popen(
        [os.path.join(ROOT, "scripts", "pydbgauto"), "watch", *args, "--json", "--dump-dir", str(dump_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: List[Dict[str, Any]] = []
    try:
        assert cli.stdout is not None
        for raw in cli.stdout:
            lines.append(json.loads(raw))
            if on_line(lines[-1]):
                break
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    return cli.returncode, lines, err


class Armed:
    """An on_event callback that records which pids are armed (and everything it saw)."""

    def __init__(self) -> None:
        self.pids: Set[int] = set()
        self.kinds: List[str] = []
        self.cond = threading.Condition()

    def __call__(self, kind: str, data: Any) -> None:
        with self.cond:
            self.kinds.append(kind)
            if kind == "armed":
                self.pids.add(int(data["pid"]))
                self.cond.notify_all()

    def wait_for(self, pids: Set[int], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pids <= self.pids, timeout)


def test_three_processes_one_started_late_max_dumps_in_total(
    runtime: str, apps: List[WaitingApp], tmp_path: Any, no_lldb_left: None
) -> None:
    unique_app = renamed_app(tmp_path, runtime, "pdaE")
    name = os.path.basename(unique_app)
    apps += [WaitingApp(unique_app), WaitingApp(unique_app)]
    armed = Armed()
    out: Dict[str, Any] = {}
    dumps = tmp_path / "dumps"
    dumps.mkdir()

    def run() -> None:
        out["result"] = watch_all(
            name,
            wait=True,
            when=pda.exception_type(IOE),
            dump_dir=str(dumps),
            max_dumps=3,
            timeout=240,
            on_event=armed,
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert armed.wait_for({a.pid for a in apps}, 120), armed.kinds
    for app in apps:
        app.send("custom")  # not a match: logged, not dumped
        app.send("invalid-op")
    late = WaitingApp(unique_app)  # started after the watch began: found by polling the name
    apps.append(late)
    assert armed.wait_for({late.pid}, 120), armed.kinds
    late.send("invalid-op")
    thread.join(240)
    assert not thread.is_alive()
    result: MultiWatchResult = out["result"]
    pids = {a.pid for a in apps}

    # max_dumps is a total: no process reached 3 on its own, yet the watch ended at 3 dumps
    assert result.ended == "max-dumps", result
    assert set(result.pids) == pids and not result.errors
    assert sorted(c.event.pid for c in result.captures) == sorted(pids)
    for capture in result.captures:
        assert capture.exception is not None and capture.exception.type == IOE
        assert capture.dump is not None and capture.dump.verified, capture.dump
        assert f"_{capture.event.pid}_" in os.path.basename(capture.dump.path)
        with open(capture.record_path or "") as f:
            assert json.load(f)["event"]["pid"] == capture.event.pid

    # one decision log, every line whole and with its pid; per process, one line per THROW of the app
    with open(result.log_path) as f:
        lines = [json.loads(line) for line in f]
    for app in apps:
        app.finish()
        mine = [line for line in lines if line["pid"] == app.pid]
        assert len(mine) == len(throw_lines(app.lines)), (app.pid, mine, app.lines)
        assert [line["action"] for line in mine if line["exception_type"] == IOE] == ["dump"]
    assert {line["pid"] for line in lines} == pids
    assert "process-done" in armed.kinds and armed.kinds[-1] == "done"


def test_cli_watches_every_running_process_of_the_name(
    unique_app: str, apps: List[WaitingApp], tmp_path: Any, no_lldb_left: None
) -> None:
    """`pydbgauto watch --name X` with two running: both watched (pid on every JSON line); without --wait
    the watch ends when both have exited."""
    name = os.path.basename(unique_app)
    apps += [WaitingApp(unique_app), WaitingApp(unique_app)]
    by_pid = {a.pid: a for a in apps}

    def on_line(line: Dict[str, Any]) -> bool:
        if line.get("event") == "armed":
            app = by_pid[line["pid"]]
            app.send("invalid-op")
            app.send("exit")
        return line.get("event") == "summary-all"

    code, lines, err = json_watch(
        ["--name", name, "--type", IOE, "--max-dumps", "0", "--no-verify", "--timeout", "180"],
        tmp_path,
        on_line,
    )
    assert code == 0, (err[-2000:], lines)
    assert all("pid" in line for line in lines if line["event"] != "summary-all"), lines
    summary = lines[-1]
    assert summary["event"] == "summary-all" and summary["ended"] == "exit"
    assert sorted(summary["pids"]) == sorted(by_pid) and len(summary["dumps"]) == 2
    for pid in by_pid:
        events = [line for line in lines if line.get("pid") == pid and line["event"] == "exception"]
        assert [e["type"] for e in events] == [IOE], lines
        assert any(line["event"] == "summary" and line["pid"] == pid for line in lines)
        assert any(line["event"] == "exit" and line["pid"] == pid for line in lines)


def test_one_process_of_the_name_keeps_the_single_watch(
    unique_app: str, apps: List[WaitingApp], tmp_path: Any, no_lldb_left: None
) -> None:
    """One process and no --wait: the single-process watch (its summary, no summary-all)."""
    name = os.path.basename(unique_app)
    app = WaitingApp(unique_app)
    apps.append(app)

    def on_line(line: Dict[str, Any]) -> bool:
        if line.get("event") == "armed":
            app.send("invalid-op")
        return False

    code, lines, err = json_watch(
        ["--name", name, "--type", IOE, "--no-verify", "--timeout", "120"], tmp_path, on_line
    )
    assert code == 0, err[-2000:]
    assert lines[-1]["event"] == "summary" and lines[-1]["ended"] == "max-dumps"
    assert not any(line["event"] == "summary-all" for line in lines)
    assert not any("pid" in line for line in lines if line["event"] == "exception")


def test_ctrl_c_detaches_from_every_process_and_leaves_them_running(
    unique_app: str, apps: List[WaitingApp], tmp_path: Any, no_lldb_left: None
) -> None:
    name = os.path.basename(unique_app)
    apps += [WaitingApp(unique_app), WaitingApp(unique_app)]
    cli = subprocess.Popen(
        [os.path.join(ROOT, "scripts", "pydbgauto"), "watch", "--name", name, "--wait", "--json"]
        + ["--type", IOE, "--timeout", "180", "--dump-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    armed: Set[int] = set()
    try:
        assert cli.stdout is not None
        for raw in cli.stdout:
            line = json.loads(raw)
            if line.get("event") == "armed":
                armed.add(line["pid"])
            if armed == {a.pid for a in apps}:
                break
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 130, err[-2000:]
    assert "interrupted" in err
    for app in apps:
        assert app.proc.poll() is None and tracer_of(app.pid) == 0
        app.send("invalid-op")  # it runs on, undebugged
        assert app.wait_for_line("CAUGHT System.InvalidOperationException", 30), app.lines
