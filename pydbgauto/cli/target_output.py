"""A launched target's output, shown as ``watch`` goes: lldb writes it to files (drivers/lldb/process.py,
``output_dir``); this follows them and hands what they gain to the printer as ``target-output`` events.

Files, not a pipe: a pipe whose reader died would stop (SIGPIPE: kill) the target with us; a file never
blocks it. Whole lines only, so the watch's own lines never land inside one of the target's, except a
last line left without its line break for longer than ``PARTIAL_AFTER`` seconds (a prompt).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

EventCallback = Callable[[str, Mapping[str, Any]], None]
CHUNK = 1 << 16
PARTIAL_AFTER = 0.5


class OutputFollower:
    """Follows ``files`` (stream name -> path; a path may not exist yet) every ``interval`` seconds on a
    thread; ``drain()`` also does it at once, from the watch's thread before each of its events."""

    def __init__(self, files: Mapping[str, str], emit: EventCallback, interval: float = 0.1) -> None:
        self._files = dict(files)
        self._emit = emit
        self._interval = interval
        self._offsets: Dict[str, int] = {name: 0 for name in files}
        self._partial: Dict[str, Tuple[bytes, float]] = {}  # stream -> (bytes without "\n", since)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "OutputFollower":
        self._thread = threading.Thread(target=self._run, name="pydbgauto-target-output", daemon=True)
        self._thread.start()
        return self

    def wrap(self, callback: EventCallback) -> EventCallback:
        """``callback`` with the target's output drained before each event (it comes first in time)."""

        def on_event(kind: str, data: Mapping[str, Any]) -> None:
            self.drain()
            callback(kind, data)

        return on_event

    def stop(self) -> None:
        """The last of the output, partial lines too; the thread ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.drain(final=True)

    def drain(self, final: bool = False) -> None:
        with self._lock:
            for name, path in self._files.items():
                for text in self._read(name, path, final):
                    self._emit("target-output", {"stream": name, "text": text})

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.drain()
            except Exception:  # noqa: BLE001 - showing the output must never end the watch
                pass

    def _read(self, name: str, path: str, final: bool) -> List[str]:
        try:
            with open(path, "rb") as f:
                f.seek(self._offsets[name])
                data = f.read() if final else f.read(CHUNK)
        except OSError:  # not created yet, or removed at the end
            data = b""
        self._offsets[name] += len(data)
        held, since = self._partial.pop(name, (b"", time.monotonic()))
        data = held + data
        cut = data.rfind(b"\n") + 1
        whole, rest = data[:cut], data[cut:]
        if rest and not final and time.monotonic() - since < PARTIAL_AFTER:
            self._partial[name] = (rest, since if held else time.monotonic())
            rest = b""
        out = whole + rest
        return [out.decode("utf-8", errors="replace")] if out else []
