"""A match the debugger-side filter decided is dumped before SOS reads the stop (pydbgauto/watching/
capture.py): the order is proven from the agent's trace (PYDBGAUTO_AGENT_TRACE), the record still has the
stop's pe and clrstack, the dump is verified, and stack dedupe still works for the next match.
Real parts: lldb, SOS, the sample app on both runtimes, dotnet-dump reopening the dump."""

from __future__ import annotations

import json
import os
import threading
from typing import Any, List, Mapping

import pytest

import pydbgauto as pda
from pydbgauto.watching import watch

from .conftest import WaitingApp

pytestmark = pytest.mark.lldb

IOE = "System.InvalidOperationException"


def _throw_when_armed(app: WaitingApp, *commands: str):  # type: ignore[no-untyped-def]
    def on_event(kind: str, data: Mapping[str, Any]) -> None:
        if kind == "armed":
            threading.Timer(0.2, lambda: [app.send(c) for c in commands]).start()

    return on_event


def _watch_for_ioe(app: WaitingApp, tmp_path, *commands: str, **options: Any):  # type: ignore[no-untyped-def]
    """watch() of the running app for IOE, ``commands`` sent to it once the watch is armed."""
    options = dict({"max_dumps": 1, "timeout": 60, "verify": False}, **options)
    return watch(
        pid=app.pid,
        when=pda.exception_type(IOE),
        dump_dir=str(tmp_path),
        on_event=_throw_when_armed(app, *commands),
        handle_signals=False,
        **options,
    )


def _agent_lines(trace: str) -> List[str]:
    """The trace's lines without the monotonic time each begins with."""
    with open(trace) as f:
        return [line.rstrip("\n").split(" ", 1)[-1] for line in f]


def test_a_decided_match_is_dumped_before_pe_and_clrstack(waiting_app, runtime, tmp_path, monkeypatch):
    trace = str(tmp_path / "agent.trace")
    monkeypatch.setenv("PYDBGAUTO_AGENT_TRACE", trace)
    waiting_app.send("invalid-op")  # the type is loaded before the watch: its MethodTable is learnt at arming
    assert waiting_app.wait_for_line("OK invalid-op", 30)
    result = _watch_for_ioe(waiting_app, tmp_path, "invalid-op", timeout=120, verify=True)
    assert result.ended == "max-dumps", result
    capture = result.captures[0]
    assert capture.event.matched_in_debugger
    # the record has what SOS read at the same stop, after the dump
    assert capture.exception is not None and capture.exception.type == IOE and capture.exception.raw
    assert capture.stack is not None and capture.stack.frames
    assert capture.threads is not None
    assert capture.dump is not None and capture.dump.verified, capture.dump
    assert os.stat(capture.dump.path).st_mode & 0o777 == 0o600
    assert capture.timings["stop_to_dump_file"] <= capture.timings["pause"]
    # the order at that stop, from the agent's own trace: the dump, then SOS's pe and clrstack
    lines = _agent_lines(trace)
    dump_at = next(i for i, line in enumerate(lines) if line.startswith("dump "))
    last_report = max(i for i, line in enumerate(lines[:dump_at]) if line.startswith("report "))
    sos_between = [line for line in lines[last_report:dump_at] if line.startswith("hc ")]
    assert sos_between == [], sos_between  # the stop cost no SOS command before its dump (type learnt)
    after = [line.split()[1] for line in lines[dump_at:] if line.startswith("hc ")]
    assert "clrstack" in after and "pe" in after, after
    # the decision log line says what the debugger read (the type), and that it matched
    with open(result.log_path) as f:
        logged = [json.loads(line) for line in f if line.strip()]
    dumped = [line for line in logged if line["action"] == "dump"]
    assert len(dumped) == 1 and dumped[0]["exception_type"] == IOE and dumped[0]["matched"], logged
    # the result keeps the stop as SOS read it
    event, decision = result.decisions[-1]
    assert decision.action == "dump" and event.stack is not None and event.exception.raw


def test_the_second_match_at_the_same_place_is_a_duplicate(waiting_app, runtime, tmp_path):
    """The first dump was taken before its stack was read; its stack signature is remembered all the same,
    so the same throw again is a duplicate-stack (read by SOS before the decision: there is a stack to
    compare with now)."""
    result = _watch_for_ioe(waiting_app, tmp_path, "invalid-op", "invalid-op", max_dumps=2, timeout=20)
    reasons = [d.reason for _, d in result.decisions if d.reason != "no-match"]
    assert reasons == ["matched", "duplicate-stack"], [(e.exception_type, d) for e, d in result.decisions]
    assert len(result.captures) == 1 and result.captures[0].event.matched_in_debugger


def test_skip_first_matches_cost_no_sos(waiting_app, runtime, tmp_path, monkeypatch):
    """Matches let pass by skip_first are decided on what the debugger read: no pe or clrstack for them."""
    trace = str(tmp_path / "agent.trace")
    monkeypatch.setenv("PYDBGAUTO_AGENT_TRACE", trace)
    waiting_app.send("invalid-op")
    assert waiting_app.wait_for_line("OK invalid-op", 30)
    result = _watch_for_ioe(waiting_app, tmp_path, "repeat 4", skip_first=3, dedupe=False)
    assert [d.reason for _, d in result.decisions] == ["skip-first"] * 3 + ["matched"], result.decisions
    commands = [line.split()[1] for line in _agent_lines(trace) if line.startswith("hc ")]
    assert commands.count("pe") <= 1 and commands.count("clrstack") <= 1, commands  # the dumped one only
