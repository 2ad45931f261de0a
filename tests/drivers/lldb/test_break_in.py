"""LldbDriver.break_in's bookkeeping around the agent's replies, with the agent replaced by a TEST DOUBLE
(scripted replies to ``resume``; no lldb runs). The real break-in is in tests/integration/test_break_in.py;
these cover the races it cannot force: an exception stop that wins over the break, and the cancel byte
the agent then leaves unread."""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, Dict, List

import pytest

from pydbgauto.drivers.base import FilteredStop, StopKind, Target
from pydbgauto.drivers.lldb import LldbDriver
from pydbgauto.errors import DebuggerTimeoutError


class ScriptedAgent:
    """Answers the driver's requests: each ``resume`` takes the next reply from a queue (blocking, like a
    running target); ``threads`` names thread 7 as selected."""

    def __init__(self) -> None:
        self.replies: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.ops: List[str] = []

    def request(self, op: str, limit: Any, **args: Any) -> Any:
        self.ops.append(op)
        if op == "threads":
            return {"threads": [7, 8], "selected": 7}
        assert op == "resume"
        return self.replies.get(timeout=10)


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Any:
    d = LldbDriver(Target(pid=os.getpid()))
    agent = ScriptedAgent()
    monkeypatch.setattr(d, "_request", agent.request)
    monkeypatch.setattr(d, "_alive", lambda: True)
    read_end, d._cancel_w = os.pipe()
    d.agent = agent  # type: ignore[attr-defined]
    d.cancel_read = read_end  # type: ignore[attr-defined]
    yield d
    os.close(read_end)
    os.close(d._cancel_w)


def _resume_in_thread(d: Any) -> Dict[str, Any]:
    got: Dict[str, Any] = {}
    thread = threading.Thread(target=lambda: got.setdefault("stop", d.resume(30)), daemon=True)
    thread.start()
    got["thread"] = thread
    while not d._resuming:
        time.sleep(0.001)
    return got


def test_break_in_while_resuming_sends_the_cancel_byte_and_both_get_the_break(driver: Any) -> None:
    got = _resume_in_thread(driver)
    threading.Timer(0.1, lambda: driver.agent.replies.put({"kind": "cancelled", "filtered": []})).start()
    stop = driver.break_in(timeout=5)
    got["thread"].join(5)
    assert os.read(driver.cancel_read, 8) == b"b"
    assert stop.kind is StopKind.BREAK and stop.thread_id == 7 and got["stop"] is stop
    assert not driver._stale_cancel


def test_an_exception_that_wins_the_race_is_the_stop_and_the_unread_byte_is_skipped_later(
    driver: Any,
) -> None:
    got = _resume_in_thread(driver)
    first_chance = {"kind": "first-chance", "thread_id": 8, "exception_address": 0x1000, "filtered": []}
    threading.Timer(0.1, lambda: driver.agent.replies.put(first_chance)).start()
    stop = driver.break_in(timeout=5)
    got["thread"].join(5)
    assert stop.kind is StopKind.FIRST_CHANCE and stop.thread_id == 8 and got["stop"] is stop
    assert driver._stale_cancel  # the agent had not read the byte: the next wait meets it at once
    driver.agent.replies.put({"kind": "cancelled", "filtered": [{"thread_id": 8, "type": "X"}]})
    driver.agent.replies.put(
        {"kind": "first-chance", "thread_id": 7, "exception_address": 0x2000, "filtered": []}
    )
    again = driver.resume(30)
    assert again.kind is StopKind.FIRST_CHANCE and again.exception_address == 0x2000
    # the skipped reply's log is kept
    assert driver.take_filtered() == [FilteredStop(exception_address=0, thread_id=8, type="X")]
    assert not driver._stale_cancel


def test_break_in_on_a_stopped_target_asks_only_for_the_selected_thread(driver: Any) -> None:
    stop = driver.break_in()
    assert stop.kind is StopKind.BREAK and stop.thread_id == 7
    assert driver.agent.ops == ["threads"]


def test_a_wait_that_times_out_still_raises_and_a_timed_out_break_says_so(driver: Any) -> None:
    driver.agent.replies.put({"kind": "timeout", "filtered": []})
    with pytest.raises(DebuggerTimeoutError):
        driver.resume(1)
    got = _resume_in_thread(driver)
    with pytest.raises(DebuggerTimeoutError, match="did not stop within 0.2 s"):
        driver.break_in(timeout=0.2)
    driver.agent.replies.put({"kind": "cancelled", "filtered": []})
    got["thread"].join(5)
    assert got["stop"].kind is StopKind.BREAK  # the break still landed, for the waiting thread
