"""guardian.py: a clean detach is one even when lldb-server's end is seen before the "detaching" line is read.

The agent writes "release" and "detaching" to the journal, then detaches, which ends lldb-server. Under load
the guardian once read the journal between the two lines and then saw lldb-server gone: it took the detach
for the debugger's death and "recovered" a target that was already free (about 1 session in 50, with the
message "ended without detaching (tracer-ended)"). Here the guardian's read is made to fall exactly there.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, List

from pydbgauto.drivers.lldb import guardian


def _line(op: str, **fields: Any) -> bytes:
    return (json.dumps(dict(fields, op=op)) + "\n").encode()


def test_a_detach_whose_lines_come_after_a_read_is_still_clean(monkeypatch) -> None:
    target = subprocess.Popen(["sleep", "30"])
    tracer = subprocess.Popen(["sleep", "30"])  # test double of lldb-server: a process that ends on cue
    monkeypatch.setattr(guardian, "_tracer_of", lambda pid: tracer.pid)
    recovered: List[str] = []
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as journal:
            g = guardian.Guardian(journal, None)
            monkeypatch.setattr(g, "recover", lambda cause: recovered.append(cause) or 1)
            reads = {"n": 0}
            receive = g._receive

            def receive_then_detach() -> bytes:
                data = receive()
                reads["n"] += 1
                if reads["n"] == 2:  # the "release" line is read; the agent goes on and detaches
                    os.write(write_fd, _line("detaching") + _line("detached"))
                    tracer.kill()
                    tracer.wait()
                return data

            monkeypatch.setattr(g, "_receive", receive_then_detach)
            os.write(write_fd, _line("attached", pid=target.pid, sites=[]))
            first = g._receive()  # as the watch loop would, so the next read is the "release" one
            g._feed(first)
            os.write(write_fd, _line("release"))
            assert g._watch() is None
        assert recovered == []
    finally:
        os.close(write_fd)
        for p in (target, tracer):
            p.kill()
            p.wait()
