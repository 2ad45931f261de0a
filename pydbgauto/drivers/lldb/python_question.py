"""The stub's question answered in pydbgauto's own Python (a callable predicate; .NET 8): the driver's
side of ``Driver.ask_about_throws``.

The agent in lldb cannot run a plain callable, so without this every throw stops the target and comes
back here (~1 ms a round trip beside lldb's ~1.1-ms stop). Here the stub's socket is this process's
(verdict_server.py's thread, the same ``SO_PEERCRED`` check of the target's pid), the agent is told its
name (``op_ask``) and turns the question on once its field reader is trusted (asking.py), and the
caller's ``decide`` says, on this thread, whether the throw can match. An answer "stop" (or a type not
known yet, a message longer than the record) makes the thread take the trap: the agent stops the target
and reports the throw as without the question.

Types: a request names the MethodTable; its chain is learnt from the events the agent reports (each first
chance stop carries its ``method_table``) and from op_ask's reply. What was let go is listed by
:meth:`take_passed` as FilteredStops (ASKED_AND_LET_GO), which the driver hands on with the agent's.
A ``decide`` that answers None (stop, and ask no more: the predicate keeps needing the stop) makes
:attr:`given_up` true; the driver then tells the agent at its next request (``op_ask`` with no name).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

from pydbgauto.drivers.base import ASKED_AND_LET_GO, AskedThrow, AskedVerdict, FilteredStop
from pydbgauto.drivers.lldb.verdict_ask import Request
from pydbgauto.drivers.lldb.verdict_server import VerdictServer
from pydbgauto.errors import PydbgautoError

log = logging.getLogger(__name__)
# The agent's op_ask(name=): the socket's name (None: no more); its reply: the types known so far
Ask = Callable[..., Dict[str, Any]]


class PythonQuestion:
    def __init__(self, pid: int, decide: Callable[[AskedThrow], AskedVerdict]) -> None:
        self._decide = decide
        self.type_chains: Dict[int, Tuple[str, ...]] = {}  # MethodTable -> chain (the driver learns them)
        self.unknown_types = 0  # asked about a type not seen at a stop yet: stopped for
        self.given_up = False
        self.server = VerdictServer(pid, self._answer)

    @classmethod
    def start(cls, pid: int, decide: Callable[[AskedThrow], AskedVerdict], ask: Ask) -> "PythonQuestion":
        """Listen, then tell the agent where."""
        question = cls(pid, decide)
        try:
            reply = ask(name=question.server.name)
        except BaseException:
            question.close()
            raise
        if isinstance(reply.get("pid"), int):  # lldb asks too, at .NET 9+'s stops (stop_question.py)
            question.server.pids.add(reply["pid"])
        for method_table, chain in reply.get("type_chains") or ():
            question.learn(method_table, chain)
        return question

    def end(self, ask: Optional[Ask]) -> List[FilteredStop]:
        """The agent turns the question off (``ask``; None: lldb is gone), then no one answers; returns
        the last throws let go."""
        try:
            if ask is not None:
                ask(name=None)
        except PydbgautoError as e:  # the detach that follows says what is wrong with lldb
            log.warning("could not turn the question off: %s", e)
        finally:
            self.close()
        return self.take_passed()

    def learn(self, method_table: Any, chain: Any) -> None:
        if isinstance(method_table, int) and chain:
            self.type_chains[method_table] = tuple(chain)

    def _answer(self, request: Request) -> bool:
        """The server thread's verdict: True lets the throw go on."""
        chain = self.type_chains.get(request.method_table)
        if chain is None:
            self.unknown_types += 1
            return False
        if request.truncated or self.given_up:
            return False
        verdict = self._decide(
            AskedThrow(
                thread_id=request.thread_id,
                exception_address=request.object,
                type_chain=chain,
                message=request.message,
                hresult=request.hresult,
            )
        )
        if verdict is None:
            self.given_up = True
        return verdict is True

    def take_passed(self) -> List[FilteredStop]:
        return [
            FilteredStop(
                exception_address=request.object,
                thread_id=request.thread_id,
                type=(self.type_chains.get(request.method_table) or ("?",))[0],
                time=at,
                description=ASKED_AND_LET_GO,
            )
            for request, at in self.server.take_passed()
        ]

    def with_passed(self, filtered: List[FilteredStop]) -> List[FilteredStop]:
        """The agent's filtered stops and the throws let go here, in time order."""
        passed = self.take_passed()
        return sorted(filtered + passed, key=lambda stop: stop.time) if passed else filtered

    def stats(self) -> Dict[str, Any]:
        server = self.server
        return {
            "answered_no": server.answered,
            "answered_stop": server.stopped,
            "refused": server.refused,
            "unlogged": server.unlogged,
            "unknown_types": self.unknown_types,
            "given_up": self.given_up,
            "error": server.error,
        }

    def close(self) -> None:
        """No more answers: a thread waiting for one sees end of file and takes the trap (a stopped
        target: at its next run, under the agent's run-out before the stub goes)."""
        self.server.close()
