"""The survey on the real lldb + SOS and the sample app: what it counts is what the app threw."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import subprocess
import tempfile
import threading
from collections import Counter
from typing import Any, Dict

import pytest

import pydbgauto as pda
from pydbgauto.surveying import SurveyCostWarning
from tests.integration.conftest import ROOT, WaitingApp, renamed_app, throw_lines

pytestmark = pytest.mark.lldb

SCENARIOS = ("repeat 6", "custom", "inner", "custom")


def drive_when_armed(app: WaitingApp, *lines: str) -> Any:
    def on_event(kind: str, data: Any) -> None:
        if kind == "armed":
            for line in lines:
                app.send(line)

    return on_event


def test_survey_counts_what_the_app_threw(waiting_app: WaitingApp, no_lldb_left: None) -> None:
    app = waiting_app
    temp_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "pydbgauto-survey-*")))
    with pytest.warns(SurveyCostWarning, match="stops the process at every exception"):
        result = pda.survey(pid=app.pid, seconds=25, on_event=drive_when_armed(app, *SCENARIOS, "exit"))
    app.proc.wait(30)
    thrown = Counter(parts[2] for parts in throw_lines(app.lines))
    assert sum(thrown.values()) == 6 + 1 + 2 + 1, app.lines
    assert {c.key: c.count for c in result.by_type} == dict(thrown)
    assert result.total == sum(thrown.values()) and result.unread == 0
    assert result.ended == "exit"  # the app was told to exit; the survey ends with it
    # one row per type here (each type has one message pattern and one site); the custom message folded
    rows = {r.type: r for r in result.rows}
    assert rows["System.InvalidOperationException"].count == 6 and result.rows[0].n == 1
    assert rows["System.InvalidOperationException"].site == "ThrowingApp.Program.ThrowInvalidOperation()"
    custom = rows["ThrowingApp.OrderRejectedException"]
    assert custom.pattern == "Order <n> was rejected: card declined" and custom.count == 2
    assert custom.site == "ThrowingApp.Program.ThrowCustom()"
    # every throw was on the app's main thread (the THROW lines say which)
    tids = {int(parts[3].split("=")[1]) for parts in throw_lines(app.lines)}
    assert {int(c.key, 16) for c in result.by_thread} == tids
    assert all(r.first_chance == r.count for r in result.rows)
    # the suggested watch line selects the row: its message regex matches the row's message
    command = result.watch_command(custom.n)
    assert f"--pid {app.pid} --type ThrowingApp.OrderRejectedException" in command
    assert re.search(
        custom.watch_args[custom.watch_args.index("--message") + 1], "Order 42 was rejected: card declined"
    )
    assert "<table" in result._repr_html_()
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "pydbgauto-survey-*"))) <= temp_before  # removed


@pytest.fixture
def unique_app(tmp_path: Any) -> str:
    return renamed_app(tmp_path, "net10", "pdaS")


def test_cli_survey_by_name_json(unique_app: str, no_lldb_left: None) -> None:
    """`pydbgauto survey --name X --seconds S --json`: the cost warning first on stderr, then the summary."""
    app = WaitingApp(unique_app)
    try:
        cli = subprocess.Popen(
            [os.path.join(ROOT, "scripts", "pydbgauto"), "survey", "--name", os.path.basename(unique_app)]
            + ["--seconds", "12", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert cli.stderr is not None
        first = cli.stderr.readline()
        assert first.startswith("pydbgauto survey: a survey stops the process at every exception"), first
        assert "docs/linux.md" in first
        armed = cli.stderr.readline()  # "watching pid N for S s": armed, throws from now on are seen
        assert armed.startswith(f"pydbgauto survey: watching pid {app.pid} for 12 s"), armed
        app.send("repeat 3")
        out, err = cli.communicate(timeout=90)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
        app.finish()
    assert cli.returncode == 0, err[-2000:]
    data: Dict[str, Any] = json.loads(out)
    thrown = Counter(parts[2] for parts in throw_lines(app.lines))
    assert (
        {c["key"]: c["count"] for c in data["by_type"]}
        == dict(thrown)
        == {"System.InvalidOperationException": 3}
    )
    assert data["pid"] == app.pid and data["target"] == ["--name", os.path.basename(unique_app)]
    assert data["watch_commands"]["1"].startswith(
        f"pydbgauto watch --name {os.path.basename(unique_app)} --type"
    )


def test_cli_survey_exit_code_1_when_nothing_is_thrown(waiting_app: WaitingApp, no_lldb_left: None) -> None:
    proc = subprocess.run(
        [
            os.path.join(ROOT, "scripts", "pydbgauto"),
            "survey",
            "--pid",
            str(waiting_app.pid),
            "--seconds",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"pid {waiting_app.pid} (ThrowingApp): 0 exceptions in")
    assert waiting_app.proc.poll() is None and waiting_app.state() in ("S", "R")  # left running


def test_the_suggested_watch_command_dumps_that_row(
    waiting_app: WaitingApp, tmp_path: Any, no_lldb_left: None
) -> None:
    """Survey, pick the custom exception's row, run its `pydbgauto watch` line: it dumps that one only."""
    app = waiting_app
    with pytest.warns(SurveyCostWarning):
        result = pda.survey(pid=app.pid, seconds=8, on_event=drive_when_armed(app, "invalid-op", "custom"))
    assert app.wait_for_line("OK custom", 30), app.lines
    row = next(r for r in result.rows if r.type == "ThrowingApp.OrderRejectedException")
    argv = shlex.split(result.watch_command(row.n, dump_dir=str(tmp_path)))
    assert argv[:2] == ["pydbgauto", "watch"]
    cli = subprocess.Popen(
        [os.path.join(ROOT, "scripts", "pydbgauto")] + argv[1:] + ["--json", "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        assert cli.stdout is not None
        for raw in cli.stdout:
            lines.append(json.loads(raw))
            if lines[-1]["event"] == "armed":
                app.send("invalid-op")  # another row: seen, not dumped
                app.send("custom")  # this row: dumped
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    assert cli.returncode == 0, err[-2000:]
    actions = [(line["type"], line["action"]) for line in lines if line["event"] == "exception"]
    assert actions == [
        ("System.InvalidOperationException", "skip"),
        ("ThrowingApp.OrderRejectedException", "dump"),
    ], lines
    dumps = [line for line in lines if line["event"] == "dump"]
    assert (
        len(dumps) == 1 and dumps[0]["capture"]["exception"]["type"] == "ThrowingApp.OrderRejectedException"
    )


def test_survey_of_the_sample_service(start_service: Any, no_lldb_left: None) -> None:
    """On the ASP.NET Core sample: what the survey counts per type is what the service says it threw."""
    service = start_service("net10")
    armed = threading.Event()

    def drive() -> None:
        assert armed.wait(60)
        for _ in range(3):
            service.handled("System.InvalidOperationException", n=3)
        service.handled("System.Collections.Generic.KeyNotFoundException", n=2)
        service.background("System.FormatException", n=2)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    with pytest.warns(SurveyCostWarning):
        result = pda.survey(
            pid=service.pid, seconds=20, on_event=lambda kind, data: kind == "armed" and armed.set()
        )
    driver.join(30)
    stats = service.stats()
    assert stats["types"] == {
        "System.InvalidOperationException": 9,
        "System.Collections.Generic.KeyNotFoundException": 2,
        "System.FormatException": 2,
    }
    assert {c.key: c.count for c in result.by_type} == stats["types"]
    assert result.rows[0].type == "System.InvalidOperationException" and result.rows[0].count == 9
    assert (
        result.rows[0].pattern is not None and "<n>" in result.rows[0].pattern
    )  # numbered messages, one row


def test_survey_of_every_process_of_a_name(tmp_path: Any, no_lldb_left: None) -> None:
    """Two processes of one name: one debugger each, one summary; per process what each app threw."""
    path = renamed_app(tmp_path, "net10", "pdaS")
    apps = [WaitingApp(path), WaitingApp(path)]
    scenarios = {apps[0].pid: ("repeat 3", "exit"), apps[1].pid: ("custom", "inner", "exit")}
    try:
        with pytest.warns(SurveyCostWarning):
            result = pda.survey(
                name=os.path.basename(path),
                seconds=30,
                on_event=lambda kind, data: kind == "armed"
                and [next(a for a in apps if a.pid == data["pid"]).send(s) for s in scenarios[data["pid"]]],
            )
        for app in apps:
            app.proc.wait(30)
    finally:
        for app in apps:
            if app.proc.poll() is None:
                app.proc.kill()
                app.proc.wait()
    assert result.pid is None and result.ended == "exit"  # both told to exit
    assert {c.key: c.count for c in result.by_pid} == {str(a.pid): len(throw_lines(a.lines)) for a in apps}
    thrown = Counter(parts[2] for a in apps for parts in throw_lines(a.lines))
    assert {c.key: c.count for c in result.by_type} == dict(thrown)
    assert all(c.key.split(":")[0] in {str(a.pid) for a in apps} for c in result.by_thread)
    assert result.watch_command(1).startswith(f"pydbgauto watch --name {os.path.basename(path)} ")
