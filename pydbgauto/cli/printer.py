"""What ``pydbgauto watch`` prints: one line (text or JSON) per exception seen and per dump."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, Mapping, Optional, TextIO

__all__ = ["Printer"]

# A message's line breaks and other control characters, written as escapes: one line per exception.
_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t", 127: "\\x7f"}


def _one_line(text: str) -> str:
    return text.translate(_CONTROL)


def _exit_text(status: Optional[int], description: str) -> str:
    if status is None:  # lldb lost lldb-server as the target exited (drivers/lldb/agent.py)
        return f"the target exited; its exit status is unknown ({description or 'the debugger lost it'})"
    return f"the target exited with status {status}"


class Printer:
    """One line per exception seen and per dump; a spinner on a terminal while a dump is written."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self._spinner: Optional[threading.Event] = None
        self._lock = threading.Lock()  # a launched target's output comes from another thread

    def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            if kind == "target-output":
                self._target_output(data["stream"], data["text"])
            elif self.as_json:
                self._json(kind, data)
            else:
                self._text(kind, data)
            self.out.flush()

    def _target_output(self, stream: str, text: str) -> None:
        """What a launched target wrote (cli/target_output.py): as it is, to our stdout or stderr; a JSON
        line with --json, so stdout stays JSON."""
        if self.as_json:
            self.out.write(json.dumps({"event": "target-output", "stream": stream, "text": text}) + "\n")
            return
        out = self.out if stream == "stdout" else sys.stderr
        if self._spinner is not None and out is self.out:
            out.write("\r" + " " * 12 + "\r")  # over the dump's spinner, which redraws below
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()

    def _json(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "armed":
            line = dict(data, event="armed")
        elif kind == "decision":
            ev, d = data["event"], data["decision"]
            line = {
                "event": "exception" if ev.kind != "exit" else "exit",
                "sequence": ev.sequence,
                "kind": ev.kind,
                "type": ev.exception_type,
                "address": ev.exception_address,
                "thread_id": ev.thread_id,
                "message": ev.exception.message if ev.exception else None,
                "action": d.action,
                "reason": d.reason,
                "exit_status": ev.exit_status,
            }
            if ev.crash is not None:  # second chance: how the process dies (stack overflow, fail-fast, ...)
                line["crash"] = ev.crash.to_dict()
        elif kind == "dump-start":
            line = {"event": "dump-start", "path": data["path"]}
        elif kind == "dump-done":
            c = data["capture"]
            line = {"event": "dump", "capture": c.to_dict(include_raw=False)}
        else:
            r = data["result"]
            line = {
                "event": "summary",
                "exceptions": r.events_seen,
                "thrown": r.thrown,  # the runtime's count (None: not known)
                "matched": r.matched,
                "dumps": [c.dump.path for c in r.captures if c.dump],
                "ended": r.ended,
                "log": r.log_path,
                "exit_status": r.exit_status,
                "seconds": round(r.elapsed, 3),
            }
        self.out.write(json.dumps(line) + "\n")

    def _text(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "armed":
            where = "in the debugger" if data["filtered_in_debugger"] else "in Python"
            versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items() if v)
            self.out.write(
                f"watching pid {data['pid']} ({versions}); predicate {data['predicate']} runs {where}\n"
            )
        elif kind == "decision":
            ev, d = data["event"], data["decision"]
            if ev.kind == "exit":
                self.out.write(f"#{ev.sequence} {_exit_text(ev.exit_status, ev.description)}\n")
                return
            msg = ev.exception.message if ev.exception and ev.exception.message else ""
            if ev.crash is not None:  # "stack-overflow", "fail-fast: <its message>", ...
                msg = f"{ev.crash.kind}: {ev.crash.message}" if ev.crash.message else ev.crash.kind
            msg = _one_line(msg)
            msg = (msg[:80] + "...") if len(msg) > 80 else msg
            self.out.write(
                f"#{ev.sequence} {ev.kind} {ev.exception_type or '?'} thread {ev.thread_id or 0:#x}"
                f"{': ' + msg if msg else ''} -> {d.action} ({d.reason})\n"
            )
        elif kind == "dump-start":
            self.out.write(f"   writing {data['path']} ...\n")
            self._start_spinner()
        elif kind == "dump-done":
            self._stop_spinner()
            c = data["capture"]
            if c.dump:
                self.out.write(f"   dump {c.decision.n}: {c.dump}\n   record: {c.record_path}\n")
            else:
                self.out.write(f"   dump {c.decision.n} FAILED: {c.dump_error}\n")
        else:
            self.out.write(f"{data['result']}\n")

    def _start_spinner(self) -> None:
        if not self.out.isatty():
            return
        stop = threading.Event()
        self._spinner = stop

        def spin() -> None:
            started = time.monotonic()
            while not stop.wait(0.2):
                self.out.write(f"\r   {time.monotonic() - started:5.1f} s")
                self.out.flush()
            self.out.write("\r")

        threading.Thread(target=spin, daemon=True).start()

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.set()
            self._spinner = None
