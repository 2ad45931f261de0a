"""The sample service under the real lldb + SOS, attached cold: live ASP.NET Core stacks parse right.

A request's stack runs through the minimal API's compiled request delegate, where SOS prints
``SOS Warning: Loading symbols for dynamic assemblies is not yet supported`` inside the clrstack row
(tests/sos/test_service_transcripts.py has the recorded form). Here the same is checked on the stop
events the session parses live, with the service's own counts as the reference.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Dict, List, Optional

import pytest

from pydbgauto.models import StopEvent
from pydbgauto.session import Session
from tests.integration.service import Reply, Service, expected_stats

pytestmark = pytest.mark.lldb

TIMEOUT = 60.0
DYNAMIC = re.compile(r"^DynamicClass\.lambda_method\d+\(")
THROW = "ServiceApp.Thrower.Throw(ServiceApp.Counters, System.String, System.String)"
MIDDLEWARE = "ServiceApp.Program+<>c__DisplayClass0_0+<<Main>b__2>d.MoveNext()"


class Request:
    """One GET from its own thread: the service is stopped at the throw while the request waits."""

    def __init__(self, service: Service, path: str, params: Dict[str, Any]) -> None:
        self.reply: Optional[Reply] = None
        self._thread = threading.Thread(target=self._run, args=(service, path, params), daemon=True)
        self._thread.start()

    def _run(self, service: Service, path: str, params: Dict[str, Any]) -> None:
        self.reply = service.get(path, params, timeout=TIMEOUT)

    def result(self) -> Reply:
        self._thread.join(TIMEOUT)
        assert self.reply is not None, "the request did not finish"
        return self.reply


def managed(ev: StopEvent) -> List[Optional[str]]:
    assert ev.stack is not None and ev.stack.error is None, ev
    return [f.method for f in ev.stack.frames if f.kind == "managed"]


def next_first_chance(s: Session) -> StopEvent:
    ev = s.wait_for_event(TIMEOUT)
    assert ev.kind == "first-chance", ev
    assert ev.stack is not None
    assert not any("SOS Warning" in f.call_site for f in ev.stack.frames), ev.stack
    return ev


def test_live_request_stacks_through_the_request_delegate(service: Service, no_lldb_left: None) -> None:
    with Session.attach(pid=service.pid, command_timeout=TIMEOUT) as s:
        s.break_on_clr_exceptions()
        handled = Request(service, "/handled", {"type": "System.TimeoutException"})
        ev = next_first_chance(s)
        assert ev.exception is not None
        assert (ev.exception.type, ev.exception.message) == (
            "System.TimeoutException",
            "handled System.TimeoutException #1",
        )
        assert ev.throw_site is not None and ev.throw_site.method == THROW
        names = managed(ev)
        i = next(k for k, name in enumerate(names) if name and DYNAMIC.match(name))
        assert (
            names[i - 1]
            == "ServiceApp.Program+<>c__DisplayClass0_0.<Main>b__3(System.String, System.Nullable`1<Int32>)"
        )
        assert names[i + 1] == MIDDLEWARE

        unhandled = Request(service, "/unhandled", {"type": "System.FormatException"})
        first = next_first_chance(s)
        assert first.exception is not None and first.exception.type == "System.FormatException"
        assert first.throw_site is not None and first.throw_site.method == THROW
        assert any(name and DYNAMIC.match(name) for name in managed(first))
        # The framework rethrows the same object when it awaits the request's task.
        again = next_first_chance(s)
        assert again.exception_address == first.exception_address
        assert again.throw_site is not None
        assert again.throw_site.method == "System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw()"
        assert again.exception is not None and [f.method for f in again.exception.frames][:1] == [THROW]
        s.detach()
    assert handled.result().status == 200
    assert unhandled.result().status == 500
    assert service.stats()["kinds"] == expected_stats(
        [("handled", "System.TimeoutException", 1), ("unhandled", "System.FormatException", 1)]
    )
