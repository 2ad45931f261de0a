"""The stub's question on the real lldb + SOS and the sample app (.NET 8; drivers/lldb/asking.py,
verdict_ask.py, verdict_server.py; docs/linux-fast-filter.md): a storm of throws the prefilter cannot rule
out is asked about, not stopped for; the target survives the debugger's death in the middle of it and a
watch that ends in the middle of it, and the decision log lists every throw. Counted, not timed."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Dict

import pytest

import pydbgauto as pda
from pydbgauto import Session
from pydbgauto.watching import watch

from .conftest import tracer_of
from .test_debugger_death import (
    anonymous_code,
    assert_target_healthy,
    code_differences,
    int3_sites,
    read_reports,
)
from .test_debugger_death import guardian_report, nothing_left  # noqa: F401 - fixtures

pytestmark = pytest.mark.lldb

# Every "repeat" throw says "The order queue timeout expired": the literal "The order" is in each (the
# prefilter lets every one reach the question) and the regex matches none.
NEVER = pda.message_matches("^The order(?! queue)")
NOWHERE = pda.thrown_in("NoSuchMethodAnywhere")  # asked with the throw site's chain (throw_sites.py)


def _net8_only(runtime: str) -> None:
    if runtime != "net8":
        pytest.skip(".NET 8's question (.NET 9+'s funnel runs in preemptive mode: asking.py)")


@pytest.mark.parametrize(
    "victim, predicate",
    [("lldb", NEVER), ("lldb-server", NEVER), ("lldb", NOWHERE)],
    ids=["lldb", "lldb-server", "lldb-thrown_in"],
)
def test_the_target_survives_the_debuggers_death_while_its_threads_ask(
    waiting_app, runtime, victim, predicate, guardian_report, nothing_left  # noqa: F811
):
    _net8_only(runtime)
    s = Session.attach(pid=waiting_app.pid)
    outcome: Dict[str, Any] = {"events": 0}

    def loop() -> None:
        try:
            while True:
                event = s.wait_for_event(30, parse=False)
                outcome["events"] += event.kind == "first-chance"
        except Exception as e:  # noqa: BLE001 - the session ends with the debugger
            outcome["error"] = e

    try:
        s.break_on_clr_exceptions()
        s.set_filter(predicate)
        sites = int3_sites(s)
        lldb_pid = s.driver._proc.pid  # type: ignore[attr-defined]
        waiter = threading.Thread(target=loop)
        waiter.start()
        waiting_app.send("repeat 200000")
        time.sleep(2.0)  # the field reader's checks, then thousands of questions
        os.kill(lldb_pid if victim == "lldb" else tracer_of(waiting_app.pid), signal.SIGKILL)
        reports = read_reports(guardian_report)
        waiter.join(60)
    finally:
        s.close()
    assert reports and reports[0]["action"] == "restored", reports
    assert outcome["events"] == 0  # nothing matched
    assert waiting_app.wait_for_line("OK repeat 200000", 180), (
        waiting_app.proc.poll(),
        waiting_app.lines[-2:],
    )
    assert_target_healthy(waiting_app, sites)


def test_a_watch_that_ends_while_threads_ask_leaves_the_target_well_and_logs_every_throw(
    waiting_app, runtime, tmp_path, nothing_left  # noqa: F811
):
    _net8_only(runtime)
    waiting_app.send("repeat 3")  # warm: the type and its fields are known before the storm
    assert waiting_app.wait_for_line("OK repeat 3", 60)
    started: Dict[str, float] = {}

    def on_event(kind: str, data: Any) -> None:
        if kind == "armed" and not started:
            started["at"] = time.monotonic()
            waiting_app.send("repeat 100000")

    result = watch(
        pid=waiting_app.pid,
        when=NEVER,
        dump_dir=str(tmp_path),
        timeout=4.0,
        verify=False,
        on_event=on_event,
        handle_signals=False,
    )
    thrown = len([line for line in waiting_app.lines if line.startswith("THROW ")])
    assert result.captures == () and result.ended == "timeout"
    assert 1000 <= result.events_seen <= thrown, (result.events_seen, thrown)
    assert waiting_app.wait_for_line("OK repeat 100000", 180), (
        waiting_app.proc.poll(),
        waiting_app.lines[-2:],
    )
    assert tracer_of(waiting_app.pid) == 0
    assert_target_healthy(waiting_app, [])
    print(f"{result.events_seen} logged in 4 s; {thrown} thrown by then")


@pytest.mark.parametrize("answered_by", ["agent", "python", "agent-throw-site"])
def test_a_warm_loaded_service_keeps_its_memory_map_after_a_watch_of_questions(
    runtime, start_service, service_load, tmp_path, answered_by, nothing_left  # noqa: F811
):
    """Thousands of throws before the attach, three client threads throwing all through the watch, so a
    thread is nearly always in the middle of a question when the watch ends: the agent lets such threads
    run out before it removes the stub (a thread in a system call cannot be moved), and the service is
    left with no page of ours (before, the stub's pages stayed mapped for it). The same with a Python
    callable, whose questions pydbgauto's own Python answers (python_question.py), and with thrown_in, whose
    questions carry the thread's return addresses (throw_sites.py)."""
    _net8_only(runtime)
    svc = start_service(runtime)
    svc.warm_up(requests=150)
    before = anonymous_code(svc.pid)
    loads = [
        service_load(svc, "/handled", {"type": "System.TimeoutException", "n": 20}, count=100000, seconds=60)
        for _ in range(3)
    ]
    time.sleep(0.5)
    result = watch(
        pid=svc.pid,
        # every message holds "handled"; none matches
        when={
            "agent": pda.message_matches("^handled(?! )"),
            "python": lambda exc: exc.message is None or not exc.message.startswith("handled "),
            "agent-throw-site": NOWHERE,  # the stub also walks the frame-pointer chain of each thread
        }[answered_by],
        dump_dir=str(tmp_path),
        # the question turns on after the first stops (the field reader's checks, the throw site seen
        # once), 4-6 stops of 0.5-1 s each with this load on a 2-core VM: 5 s were too few about once in 8
        timeout=10.0,
        verify=False,
        handle_signals=False,
    )
    assert result.captures == () and result.events_seen >= 1000, result.events_seen
    assert tracer_of(svc.pid) == 0
    assert anonymous_code(svc.pid) == before  # the stub's three pages are gone
    assert code_differences(svc.pid) == []
    for load in loads:
        load.stop()
    assert svc.handled("System.TimeoutException", 3)["caught"] == 3
