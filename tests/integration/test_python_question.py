"""A Python callable decided as the target asks (.NET 8; drivers/lldb/python_question.py, watching/asked.py)
on the real lldb + SOS and FilterApp: a throw the callable does not match never stops the target, the
callable runs once per throw, each matching throw is one event (in each of the fast filter's cases), a
callable that needs the stack stops the asking, and the target outlives pydbgauto's Python killed in the
middle of a storm of questions. On .NET 10 the stub cannot ask: every throw stops and the agent asks at the
stop (stop_question.py); the same checks hold. Stops are counted, not timed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import pytest

from pydbgauto import Session
from pydbgauto import predicates as preds
from pydbgauto.policy import DumpPolicy
from pydbgauto.watching.loop import WatchLoop

from .conftest import WaitingApp, tracer_of
from .test_debugger_death import code_differences, end_child, owned_processes, wait_gone
from .test_debugger_death import guardian_report, nothing_left  # noqa: F401 - fixtures
from .test_fast_filter import app, filterapp, filterapp_builds  # noqa: F401 - fixtures
from .test_fast_filter import command

pytestmark = pytest.mark.lldb

IOE = "System.InvalidOperationException"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Watched:
    """One watch of a waiting FilterApp through the watch loop, commands sent as it goes."""

    def __init__(self, target: WaitingApp, folder: str, callable_: Callable[[Any], bool]) -> None:
        self.app, self.folder = target, folder
        self.calls: List[Tuple[str, str]] = []  # (thread name, message) of each call
        self.matched: List[Any] = []
        self.stats: Dict[str, Any] = {}
        self.stop = threading.Event()

        def counted(exc: Any) -> bool:
            self.calls.append((threading.current_thread().name, exc.message))
            return callable_(exc)

        self.predicate = preds.as_predicate(counted)

    def run(self, commands: List[str], matches: int, timeout: float = 120) -> List[Dict[str, Any]]:
        """Send ``commands`` once armed; end at the ``matches``-th match (the stats read at each)."""
        session = Session.attach(pid=self.app.pid)

        def on_event(kind: str, data: Any) -> None:
            if kind == "armed":
                for line in commands:
                    self.app.send(line)
            elif kind == "decision" and data["decision"].reason != "no-match":
                self.matched.append(data["event"])
                self.stats = session.driver.stats()  # type: ignore[attr-defined]
                if len(self.matched) == matches:
                    self.stop.set()

        policy = DumpPolicy(dump_dir=self.folder, skip_first=10**6, verify=False, min_free_disk=0)
        log_path = os.path.join(self.folder, "decisions.jsonl")
        loop = WatchLoop(session, self.predicate, policy, "FilterApp", log_path, on_event, True, self.stop)
        result = loop.run(timeout)
        assert result.ended == "stopped", (result.ended, self.calls[-3:], self.matched)
        with open(log_path) as f:
            return [json.loads(line) for line in f]


def stops(stats: Dict[str, Any]) -> int:
    """The agent's stops but its own interrupts (each flush of the log ends a run)."""
    return int(stats["stops"] - stats["interrupts"])


def test_a_callable_is_asked_each_throw_runs_it_once_and_a_match_is_one_event(
    waiting_app, runtime, tmp_path, no_lldb_left
):
    watched = Watched(waiting_app, str(tmp_path), lambda exc: exc.message == "match")
    lines = watched.run(["storm 3", "storm 3000", "match", "storm 10", "match"], matches=2)
    thrown = 3 + 3000 + 1 + 10 + 1
    assert len(lines) == thrown, len(lines)  # every throw logged once
    assert [line["message"] for line in lines if line["matched"]] == ["match", "match"]
    assert len(watched.calls) == thrown  # the callable ran once per throw
    stats = watched.stats
    on_asking_thread = [message for name, message in watched.calls if name == "pydbgauto-verdicts"]
    if runtime != "net8":  # every throw stops; the agent asks at the stop (stop_question.py)
        assert stats["let_go_at_stops"] >= 3000, stats
        assert stats["asked_at_stops"] <= thrown - 1  # the first of a type is reported: Python learns it
        assert len(on_asking_thread) >= 3000 and on_asking_thread[-1] == "match"
        assert len([line for line in lines if line["filtered_in_debugger"]]) == stats["let_go_at_stops"]
        return
    asked = stats["python_question"]
    # The first throws stop until the field reader agrees with pe; then one stop (the trap, then its
    # __cxa_rethrow) per match, and one to learn IOE's MethodTable (the first match, decided at its stop)
    assert asked["answered_no"] >= 3000 and asked["unknown_types"] == 1, asked
    assert stops(stats) <= 3 + 2 * 2 + 2, stats
    assert len(on_asking_thread) >= 3000 and on_asking_thread[-1] == "match"  # the second, asked
    asked_lines = [line for line in lines if line["filtered_in_debugger"]]
    assert len(asked_lines) == asked["answered_no"]
    assert tracer_of(waiting_app.pid) == 0
    assert waiting_app.wait_for_line("OK match", 60)


CASES = {
    # case: (exception type the callable matches, events)
    "cross": (IOE, 1),
    "twice": (IOE, 2),
    "rethrow": (IOE, 2),
    "index": ("System.IndexOutOfRangeException", 1),
    "nullref": ("System.NullReferenceException", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_matching_throw_is_one_event(waiting_app, runtime, tmp_path, case, no_lldb_left):
    """The fast filter's cases with a callable: warmed so that the question is on and the types known
    (one of each thrown first, not matched), then the case."""
    wanted, events = CASES[case]
    warm = ["storm 3", "other", "match", "index", "nullref", "storm 3"]
    watched = Watched(waiting_app, str(tmp_path), lambda exc: exc.type == wanted and exc.message != "match")
    if wanted == IOE:
        warm.remove("match")  # the case's own IOE is the first: its type learnt at its stop
    else:
        warm.remove(case)  # the same for its type
    watched.run(warm + [case], matches=events)
    assert [e.exception_type for e in watched.matched] == [wanted] * events
    assert len({e.sequence for e in watched.matched}) == events
    assert watched.stats["python_question"]["answered_no"] >= 1, watched.stats


def test_a_callable_that_needs_the_stack_ends_the_asking(waiting_app, runtime, tmp_path, no_lldb_left):
    """Each throw asked about would stop anyway (the callable reads the stack): the asking is given up
    within GIVE_UP_AFTER throws and the rest are decided at their stops, once each."""
    watched = Watched(waiting_app, str(tmp_path), lambda exc: exc.message == "match" or len(exc.frames) < 0)
    lines = watched.run(["storm 3", "storm 100", "match"], matches=1)
    assert len(lines) == 104
    asked = watched.stats["python_question"]
    assert asked["given_up"] and asked["answered_stop"] <= 40, asked
    assert asked["answered_no"] == 0  # every "storm" throw touched the frames
    assert [line["message"] for line in lines if line["matched"]] == ["match"]


def _net8_only(runtime: str) -> None:
    if runtime != "net8":
        pytest.skip(".NET 8's question (.NET 9+'s funnel runs in preemptive mode: asking.py)")


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from pydbgauto.watching import watch
def never(exc):
    return False
def on_event(kind, data):
    if kind == "armed":
        print("ARMED", flush=True)
watch(pid={pid}, when=never, dump_dir={folder!r}, timeout=120, verify=False, on_event=on_event,
      handle_signals=False)
"""


def test_the_target_outlives_pythons_death_while_its_threads_ask(
    waiting_app, runtime, tmp_path, guardian_report  # noqa: F811
):
    """pydbgauto's Python is SIGKILLed while the target asks it about thousands of throws: a thread in
    the middle of a question gets end of file and takes the trap, lldb (told by its watchdog) detaches,
    and the target runs on untraced, its code as in its files, every throw thrown and caught. (.NET 10:
    the agent asks at each stop; it finds no one to ask and reports, then lldb detaches.)"""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=ROOT, pid=waiting_app.pid, folder=str(tmp_path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    helpers: List[int] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().startswith("ARMED")
        waiting_app.send("storm 3")
        waiting_app.send("timed 6")
        time.sleep(2.5)  # the field reader's checks, then thousands of questions
        helpers = owned_processes(child.pid)
        assert tracer_of(waiting_app.pid) in helpers
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert wait_gone(helpers, 30) == []
    finally:
        end_child(child, helpers)
    assert waiting_app.wait_for_line("OK timed 6", 60), (waiting_app.proc.poll(), waiting_app.lines[-2:])
    timed = [line for line in waiting_app.lines if line.startswith("TIMED ")]
    assert timed and int(timed[-1].split()[1].split("=")[1]) > 1000, timed
    deadline = time.monotonic() + 5
    while tracer_of(waiting_app.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tracer_of(waiting_app.pid) == 0 and waiting_app.state() not in ("T", "t", "Z", "gone")
    assert code_differences(waiting_app.pid) == []
    command(waiting_app, "match 50")
    assert waiting_app.finish()[-1] != "" and waiting_app.proc.returncode == 0
