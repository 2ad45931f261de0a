"""The stub's question answered in pydbgauto's own Python (drivers/lldb/python_question.py), against the
stub's real code run in this process (test_verdict_ask_runs.py's harness)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydbgauto.drivers.base import ASKED_AND_LET_GO as ASKED
from pydbgauto.drivers.base import AskedThrow
from pydbgauto.drivers.lldb import verdict_ask as va
from pydbgauto.drivers.lldb.python_question import PythonQuestion
from pydbgauto.errors import DebuggerError
from tests.drivers.lldb.test_verdict_ask_runs import Asking, pytestmark

__all__ = ["pytestmark"]

MT = 0x7777
CHAIN = ["System.InvalidOperationException", "System.SystemException", "System.Exception"]


class Agent:
    """Stands in for the agent's op_ask (a test double: the real one is in lldb; tests/integration)."""

    def __init__(self, asking: Asking, known: Optional[Dict[int, List[str]]] = None) -> None:
        self.asking, self.known, self.names = asking, known or {}, []  # type: ignore[var-annotated]

    def __call__(self, name: Optional[str]) -> Dict[str, Any]:
        self.names.append(name)
        self.asking.set_page(name=name)
        return {"asking": name is not None, "type_chains": [[mt, chain] for mt, chain in self.known.items()]}


def started(asking: Asking, decide: Any, known: Optional[Dict[int, List[str]]] = None) -> PythonQuestion:
    import os

    agent = Agent(asking, known)
    return PythonQuestion.start(os.getpid(), decide, lambda name: agent(name))


def test_a_type_first_seen_stops_then_the_predicate_decides_its_throws(asking):
    seen: List[AskedThrow] = []
    question = started(asking, lambda t: seen.append(t) or t.message != "match")
    try:
        address = asking.exception("other", hresult=-2146233079, mt=MT)
        assert asking.stops(address)  # its MethodTable was never reported: the stop learns it
        assert seen == [] and question.stats()["unknown_types"] == 1
        question.learn(MT, CHAIN)  # as the driver does from the stop's event
        assert not asking.stops(address)
        assert asking.stops(asking.exception("match", mt=MT))
        assert [(t.message, t.hresult, t.type_chain[0]) for t in seen] == [
            ("other", 0x80131509, CHAIN[0]),
            ("match", seen[1].hresult, CHAIN[0]),
        ]
        passed = question.take_passed()
        assert [(p.type, p.exception_address, p.description) for p in passed] == [(CHAIN[0], address, ASKED)]
    finally:
        question.close()


def test_the_types_known_when_asking_begins_are_learnt(asking):
    question = started(asking, lambda t: True, known={MT: CHAIN})
    try:
        assert not asking.stops(asking.exception("m", mt=MT))
    finally:
        question.close()


def test_no_more_asks_stop_and_end_turns_the_question_off(asking):
    calls: List[str] = []
    question = started(asking, lambda t: calls.append(t.message) and None, known={MT: CHAIN})
    assert asking.stops(asking.exception("a", mt=MT))
    assert question.given_up and calls == ["a"]
    assert asking.stops(asking.exception("b", mt=MT))  # given up: stopped for without asking the predicate
    assert calls == ["a"]
    agent = Agent(asking)
    assert question.end(lambda name: agent(name)) == []
    assert agent.names == [None] and asking.field(va.ON) == 0


def test_end_closes_even_when_lldb_cannot_be_told(asking):
    question = started(asking, lambda t: True, known={MT: CHAIN})

    def broken(name: Optional[str]) -> Dict[str, Any]:
        raise DebuggerError("lldb is gone")

    question.end(broken)
    assert asking.stops(asking.exception("m", mt=MT))  # no one listens: the trap, and the question off
    assert asking.field(va.ON) == 0


def test_a_failed_start_leaves_no_listener(asking):
    import os

    def refused(name: Optional[str]) -> Dict[str, Any]:
        asking.set_page(name=name)
        raise DebuggerError("no")

    try:
        PythonQuestion.start(os.getpid(), lambda t: True, lambda name: refused(name))
    except DebuggerError:
        pass
    assert asking.stops(asking.exception("m", mt=MT)) and asking.field(va.ON) == 0
