"""The stub's question in the agent: when it is on, what the answering thread decides, and how what it let
go reaches the decision log (verdict_ask.py is the stub's side, verdict_server.py the thread).

On .NET 8, when the in-target filter is installed and the predicate is one the agent decides from the
type, the message and the HResult (filter_ops.FIELD_READ_OPS) once its field reader agrees with ``pe``: a
throw the type cache and the prefilter cannot rule out is asked about instead of stopping the target, and
only an answer "may match" (or one the thread cannot give: an unknown type, a message longer than the
record) stops it, where the agent decides as before. ``PYDBGAUTO_NO_QUESTION`` turns it off (every such throw
stops, as before it existed).

With no predicate here (a Python callable, sent every stop with its fields: watching/thin.py), the stub
asks pydbgauto's Python instead, at the socket it names (Agent.op_ask; drivers/lldb/python_question.py
answers there, watching/asked.py decides): the agent only turns the question on and off.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

from pydbgauto.drivers.lldb import protocol, throw_sites
from pydbgauto.drivers.lldb.verdict_ask import Request
from pydbgauto.drivers.lldb.verdict_server import VerdictServer


def wanted(agent: Any) -> bool:
    """The predicate can be decided from what the stub sends (the filter's being installed aside): here,
    or in pydbgauto's Python (a callable)."""
    # .NET 8 only: its funnel runs in cooperative mode, so no GC moves the object while the stub copies
    # it; .NET 9+'s AppendExceptionStackFrame runs in preemptive mode
    return (
        agent.mechanism == "cxa-rethrow"
        and agent.fields.off is None
        and not os.environ.get("PYDBGAUTO_NO_QUESTION")
        and (_decided_here(agent) or _for_python(agent))
    )


def _decided_here(agent: Any) -> bool:
    return (
        agent.filter is not None
        and agent.filter_field_read
        and not agent.filter_type_only
        and ("stack" not in agent.filter.needs or agent.filter_site_read)
    )


def _for_python(agent: Any) -> bool:
    """No filter here, every stop sent with its fields, and Python listening (Agent.op_ask)."""
    return agent.filter is None and agent.report_fields and agent.ask_python is not None


def update(agent: Any) -> None:
    """Turn the question on when it can be (the stub is there, the field reader trusted), else off."""
    if agent.inline is None or not (wanted(agent) and agent.fields.trusted):
        stop(agent)
        return
    if _for_python(agent):
        if agent.verdicts is not None:  # the last predicate was decided here
            drain(agent)
            agent.verdicts.close()
            agent.verdicts = None
        name, agent.asking_python = agent.ask_python, True
    else:
        agent.asking_python = False
        if agent.verdicts is None:
            pid = agent._require_process().GetProcessID()
            agent.verdicts = VerdictServer(pid, lambda request: decide(agent, request))
        name = agent.verdicts.name
    runtime = agent.runtime_range()
    agent.inline.ask_on(agent, name, agent.fields.message_at, agent.fields.hresult_at, runtime)


def stop(agent: Any) -> None:
    """Off (the target is stopped): no thread asks again; what was let go is kept for the log. A thread
    in the middle of a question to Python is still answered there (Agent._run_out_of_questions)."""
    if agent.inline is not None:
        agent.inline.ask_off(agent)
    agent.asking_python = False
    if agent.verdicts is not None:
        drain(agent)
        agent.verdicts.close()
        agent.verdicts = None


def decide(agent: Any, request: Request) -> bool:
    """True when the throw cannot match (the answering thread's verdict "n"); it reads only what the main
    thread does not change while the target runs (the filter, the known types)."""
    from pydbgauto import predicates
    from pydbgauto.models import ManagedException, StopEvent

    predicate = agent.filter
    chain = agent.type_chains.get(request.method_table)
    if predicate is None or chain is None or request.truncated:
        return False  # the stop tells: an unknown type is learnt there
    stack = None
    if agent.filter_site_read:  # thrown_in: the throw site, when a stop showed it for this chain
        site = throw_sites.key(request.return_addresses, agent.runtime_range())
        stack = agent.throw_sites.stack(site, request.thread_id)
        if stack is None:
            return False  # the stop tells (and teaches the chain)
    exception = ManagedException(
        address=request.object, type=chain[0], message=request.message, hresult=request.hresult
    )
    event = StopEvent(
        kind=protocol.EVENT_FIRST_CHANCE,
        thread_id=request.thread_id,
        exception_address=request.object,
        exception=exception,
        stack=stack,
        type_chain=chain,
    )
    verdict = predicates.evaluate(predicate, predicates.Facts(event=event))
    return not verdict.matched and not verdict.error


def drain(agent: Any) -> None:
    """What the answering thread let go, into the agent's list for the decision log (in time order)."""
    if agent.verdicts is None or not agent.verdicts.has_passed():
        return
    items: List[Dict[str, Any]] = [
        {
            "thread_id": request.thread_id,
            "exception_address": request.object,
            "type": (agent.type_chains.get(request.method_table) or ("?",))[0],
            "time": at,
        }
        for request, at in agent.verdicts.take_passed()
    ]
    agent.stats["asked_passed"] += len(items)
    agent.filtered.extend(items)
    agent.filtered.sort(key=lambda item: item["time"])


def live(agent: Any) -> bool:
    return agent.verdicts is not None or agent.asking_python


def stats(agent: Any) -> Dict[str, Any]:
    server = agent.verdicts
    if agent.asking_python:
        return {"on": True, "answered_by": "python"}  # its counts: the driver's stats()["python_question"]
    if server is None:
        return {"on": False}
    return {
        "on": True,
        "answered_no": server.answered,
        "answered_stop": server.stopped,
        "refused": server.refused,
        "unlogged": server.unlogged,  # let go while MAX_KEPT waited to be taken: not in the decision log
        "error": server.error,
        "throw_sites": len(agent.throw_sites.frames),  # chains learnt (thrown_in)
        "throw_sites_refused": agent.throw_sites.refused,
    }
