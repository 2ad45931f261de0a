"""TEST DOUBLE: a Driver that replays a session recorded from the real lldb + SOS.

Not a debugger. ``record_session`` (used by scripts/record-watch-sessions) drives the real LldbDriver through
a Session against the sample app and saves, for every stop, the raw stop and the real text of every SOS
command the watch loop may ask there (pe, clrstack, dumpobj/dumpmt of the base-type chain, pe of the inner
exceptions, clrthreads). ``ReplayDriver`` hands those back in the same order, so the watch loop, the
predicates and the dump policy run on recorded debugger output with no debugger. A command that was not
recorded raises ``ReplayMiss``: a test never gets an invented answer.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional

from pydbgauto.drivers.base import DEFAULT, Driver, FilteredStop, RawStop, StopKind, Target, TimeLimit
from pydbgauto.errors import DebuggerTimeoutError
from pydbgauto.models import DumpRecord, StopEvent

FORMAT = "pydbgauto-replay-1"


class ReplayMiss(AssertionError):
    """The code under test asked the double for something the recording does not hold."""


def _key(command: str, thread_id: Optional[int]) -> str:
    return f"{thread_id or ''}|{command}"


class RecordingDriver(Driver):
    """Wraps a real driver and records what it answered (used only to make recordings)."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = inner.name
        self.sos_prefix = inner.sos_prefix
        self.threads_command = inner.threads_command
        self.stops: List[Dict[str, Any]] = []
        self._commands: Dict[str, str] = {}

    @property
    def pid(self) -> Optional[int]:
        return self.inner.pid  # type: ignore[no-any-return]

    def start(self) -> None:
        self.inner.start()

    def arm_clr_exceptions(self) -> None:
        self.inner.arm_clr_exceptions()

    def disarm_clr_exceptions(self) -> None:
        self.inner.disarm_clr_exceptions()

    def set_filter(self, spec: Any) -> bool:
        return bool(self.inner.set_filter(None))  # record every stop: the replayed loop does the filtering

    def take_filtered(self) -> List[FilteredStop]:
        return list(self.inner.take_filtered())

    def resume(self, timeout: Optional[float]) -> RawStop:
        raw = self.inner.resume(timeout)
        self._commands = {}
        self.stops.append(
            {
                "kind": raw.kind.value,
                "thread_id": raw.thread_id,
                "exception_address": raw.exception_address,
                "exit_status": raw.exit_status,
                "description": raw.description,
                "type_chain": list(raw.type_chain),
                "commands": self._commands,
            }
        )
        return raw

    def execute(self, command: str, timeout: TimeLimit = DEFAULT, *, thread_id: Optional[int] = None) -> str:
        out = str(self.inner.execute(command, timeout, thread_id=thread_id))
        self._commands[_key(command, thread_id)] = out
        return out

    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        self.inner.write_dump(path, timeout)

    def versions(self) -> Mapping[str, str]:
        return self.inner.versions()  # type: ignore[no-any-return]

    def detach(self) -> None:
        self.inner.detach()

    def close(self) -> None:
        self.inner.close()

    def save(self, path: str, scenario: str, versions: Mapping[str, str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "format": FORMAT,
                    "scenario": scenario,
                    "pid": self.pid,
                    "versions": dict(versions),
                    "stops": self.stops,
                },
                f,
                indent=1,
            )
            f.write("\n")


class ReplayDriver(Driver):
    """TEST DOUBLE: answers like the recorded lldb session did. See the module docstring."""

    sos_prefix = ""

    def __init__(self, recording: str) -> None:
        with open(recording, encoding="utf-8") as f:
            self.data = json.load(f)
        assert self.data["format"] == FORMAT
        # The Session speaks to it as to the debugger it replays (clrthreads, not !threads).
        debugger = self.data.get("debugger", "lldb")
        self.name = f"replay double of {debugger}"
        self.threads_command = "clrthreads" if debugger == "lldb" else "threads"
        self.index = -1
        self.started = self.closed = self.detached = False
        self.dumps: List[str] = []

    @classmethod
    def factory(cls, recording: str) -> Any:
        """For ``watch(..., debugger=ReplayDriver.factory(path))``: Sessions build drivers from a target."""

        def make(target: Target, **options: Any) -> "ReplayDriver":
            return cls(recording)

        return make

    @property
    def pid(self) -> Optional[int]:
        return int(self.data["pid"])

    def start(self) -> None:
        self.started = True

    def arm_clr_exceptions(self) -> None:
        pass

    def disarm_clr_exceptions(self) -> None:
        pass

    def set_filter(self, spec: Any) -> bool:
        return False  # the recording holds every stop; the Python loop decides

    def resume(self, timeout: Optional[float]) -> RawStop:
        if self.index + 1 >= len(self.data["stops"]):
            raise DebuggerTimeoutError("the recording has no more stops")
        self.index += 1
        stop = self.data["stops"][self.index]
        return RawStop(
            StopKind(stop["kind"]),
            thread_id=stop["thread_id"],
            exception_address=stop["exception_address"],
            exit_status=stop["exit_status"],
            description=stop["description"],
            type_chain=tuple(stop["type_chain"]),
        )

    def execute(self, command: str, timeout: TimeLimit = DEFAULT, *, thread_id: Optional[int] = None) -> str:
        commands = self.data["stops"][self.index]["commands"]
        key = _key(command, thread_id)
        if key not in commands and command.startswith("dumpmt "):
            # Type metadata does not change between stops; the Session caches it, so a replay may ask at
            # another stop than the recording did.
            for stop in self.data["stops"]:
                if key in stop["commands"]:
                    return str(stop["commands"][key])
        if key not in commands:
            raise ReplayMiss(f"stop {self.index}: '{command}' on thread {thread_id} was not recorded")
        return str(commands[key])

    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"\x7fELF replayed dump: a test double's placeholder\n")
        self.dumps.append(path)

    def verify_dump(self, record: DumpRecord, expect: Optional[StopEvent]) -> DumpRecord:
        """The double cannot reopen a placeholder: it reports what the real stop showed, as replayed."""
        import attr

        return attr.evolve(
            record,
            verified=True,
            reader="replay double (no reader)",
            seen_exception_type=expect.exception_type if expect else None,
            seen_thread_id=expect.thread_id if expect else None,
            verify_seconds=0.0,
        )

    def versions(self) -> Mapping[str, str]:
        return dict(
            self.data["versions"], debugger="replay double of " + self.data["versions"].get("debugger", "")
        )

    def detach(self) -> None:
        self.detached = True

    def close(self) -> None:
        self.closed = True
