"""The agent's side of the wire: one request line in, one framed reply out (no lldb needed).

The agent (agent.py, inside lldb) hands each ``pda`` command's text here with itself as the handler:
the request names an ``op_<name>`` method of it. Whatever that method raises becomes an error reply;
nothing may end lldb.
"""

from __future__ import annotations

import traceback
from typing import Any, Optional

from pydbgauto.drivers.lldb import protocol

NO_TOKEN = "0" * 16  # the token of a reply to a line that could not be read as a request


class AgentError(Exception):
    """A failure to report to the driver, with a kind (protocol.ERR_*) the driver maps to an error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def dispatch(handler: Any, line: str, profile: Optional[str] = None) -> str:
    """Run the request in ``line`` on ``handler``; the framed reply to write to the reply pipe.

    ``profile`` (PYDBGAUTO_AGENT_PROFILE=<file>): where the agent's time goes, every request's added up,
    as cProfile stats (written after each request)."""
    token = NO_TOKEN
    try:
        token, op, args = protocol.decode_request(line)
        method = getattr(handler, "op_" + op)
        if profile:
            result = _PROFILER.run(profile, method, args)
        else:
            result = method(**args)
        body = protocol.result_body(result)
    except AgentError as e:
        body = protocol.error_body(e.kind, str(e))
    except Exception as e:  # report, never kill lldb
        body = protocol.error_body(protocol.ERR_INTERNAL, f"{type(e).__name__}: {e}", traceback.format_exc())
    return protocol.frame_reply(token, body)


class _Accumulating:
    """One cProfile over every request of the session (a debugging aid; off unless asked for)."""

    def __init__(self) -> None:
        self.profiler: Any = None

    def run(self, path: str, method: Any, args: Any) -> Any:
        if self.profiler is None:
            import cProfile

            self.profiler = cProfile.Profile()
        try:
            return self.profiler.runcall(method, **args)
        finally:
            self.profiler.dump_stats(path)


_PROFILER = _Accumulating()
