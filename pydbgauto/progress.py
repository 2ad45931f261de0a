"""Live progress of a watch: a one-line display on a terminal, a live view in a notebook.

Both read the watch's ``on_event(kind, data)`` callbacks (``armed``, ``decision``, ``dump-start``,
``dump-done``, ``done``; see ``pydbgauto.watching``) and show: exceptions seen, matched, dumps written, the
last exception, and what the watch is doing. ``wrap(callback)`` returns a callback that feeds the display
and then calls ``callback`` (which may be None)::

    live = TerminalProgress(sys.stderr)            # only when sys.stderr.isatty()
    result = pda.watch(pid=1234, on_event=live.wrap(printer))
    live.close()

``pda.watch`` shows ``NotebookProgress`` by itself when it runs in a Jupyter kernel (``live=None``).
The library never prints otherwise: these are front ends.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import threading
import time
from typing import Any, Callable, Mapping, Optional, TextIO

import attr

__all__ = ["Progress", "TerminalProgress", "NotebookProgress", "in_notebook"]

EventCallback = Callable[[str, Mapping[str, Any]], None]
MESSAGE_CHARS = 60


@attr.define
class Progress:
    """What a watch has done so far (mutable; updated from the watch's callbacks)."""

    clock: Callable[[], float] = time.monotonic
    started: Optional[float] = None
    pid: Optional[int] = None
    seen: int = 0
    matched: int = 0
    dumps: int = 0
    failed_dumps: int = 0
    last: str = ""  # the last exception: type and the start of its message
    status: str = "starting the debugger"
    done: bool = False

    def update(self, kind: str, data: Mapping[str, Any]) -> None:
        if self.started is None:
            self.started = self.clock()
        if kind == "armed":
            self.pid = data.get("pid")
            self.status = "watching"
        elif kind == "decision":
            event, decision = data["event"], data["decision"]
            if event.kind == "exit":
                status = "unknown" if event.exit_status is None else event.exit_status
                self.status = f"the target exited (status {status})"
                return
            self.seen += 1
            if decision.reason != "no-match":
                self.matched += 1
            message = (event.exception.message or "") if event.exception else ""
            if len(message) > MESSAGE_CHARS:
                message = message[: MESSAGE_CHARS - 3] + "..."
            self.last = (event.exception_type or "unknown exception") + (f": {message}" if message else "")
        elif kind == "dump-start":
            self.status = "writing a dump"
        elif kind == "dump-done":
            capture = data["capture"]
            if capture.dump is not None:
                self.dumps += 1
            else:
                self.failed_dumps += 1
            self.status = "watching"
        elif kind == "done":
            self.done = True
            self.status = f"ended: {data['result'].ended}"

    @property
    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def line(self) -> str:
        """One line: ``[0:42] pid 1234: 12 seen, 3 matched, 1 dump; watching; last: System.X: message``."""
        minutes, seconds = divmod(int(self.elapsed), 60)
        text = f"[{minutes}:{seconds:02d}]"
        if self.pid is not None:
            text += f" pid {self.pid}:"
        text += (
            f" {self.seen} seen, {self.matched} matched, {self.dumps} dump{'' if self.dumps == 1 else 's'}"
        )
        if self.failed_dumps:
            text += f" ({self.failed_dumps} failed)"
        text += f"; {self.status}"
        if self.last:
            text += f"; last: {self.last}"
        return " ".join(text.split())  # no line breaks from a message


class TerminalProgress:
    """A one-line progress display redrawn in place on a terminal ``stream`` (stderr), also every
    ``interval`` seconds so the clock moves. Lines the wrapped callback prints go above it."""

    def __init__(self, stream: TextIO, *, interval: float = 1.0, min_redraw: float = 0.1) -> None:
        self.stream = stream
        self.progress = Progress()
        self.interval = interval
        self.min_redraw = min_redraw
        self._lock = threading.Lock()
        self._drawn = False
        self._last_draw = 0.0
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None

    def wrap(self, callback: Optional[EventCallback]) -> EventCallback:
        def on_event(kind: str, data: Mapping[str, Any]) -> None:
            with self._lock:
                self.progress.update(kind, data)
                if callback is not None:
                    self._clear()  # the callback's lines go where the progress line was
                    callback(kind, data)
                if kind in ("dump-start", "done"):
                    self._clear()  # a dump has its own spinner; at the end the line goes
                else:
                    self._draw(force=kind != "decision" or not self._drawn)
            if kind == "armed":
                self._start_ticker()

        return on_event

    def close(self) -> None:
        """Stop the clock and take the line away."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(2 * self.interval)
        with self._lock:
            self._clear()

    def _start_ticker(self) -> None:
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(self.interval):
                with self._lock:
                    if self.progress.status != "writing a dump" and not self.progress.done:
                        self._draw(force=True)

        self._ticker = threading.Thread(target=tick, daemon=True)
        self._ticker.start()

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_redraw:
            return
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            columns = 0
        if columns <= 0:  # not a terminal, or one that tells no size (a fresh pty)
            columns = shutil.get_terminal_size((100, 20)).columns
        width = max(20, columns - 1)
        self.stream.write("\r\x1b[K" + self.progress.line()[:width])
        self.stream.flush()
        self._drawn, self._last_draw = True, now

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


class NotebookProgress:
    """A live view in a Jupyter notebook: one display area, updated as the watch goes (at most every
    ``min_update`` seconds for ordinary exceptions; at once for dumps and the end)."""

    def __init__(self, *, min_update: float = 0.25) -> None:
        try:
            from IPython.display import HTML, display  # only called under IPython
        except ImportError:
            from pydbgauto.errors import ConfigurationError

            raise ConfigurationError(
                "a live notebook view (live=True) needs IPython: run in Jupyter"
            ) from None

        self._html = HTML
        self.progress = Progress()
        self.min_update = min_update
        self._last = 0.0
        self.handle = display(HTML(self.html()), display_id=True)

    def html(self) -> str:
        from pydbgauto.display import progress_html

        return progress_html(self.progress)

    def wrap(self, callback: Optional[EventCallback]) -> EventCallback:
        def on_event(kind: str, data: Mapping[str, Any]) -> None:
            self.progress.update(kind, data)
            now = time.monotonic()
            if kind != "decision" or now - self._last >= self.min_update:
                self._last = now
                if self.handle is not None:
                    self.handle.update(self._html(self.html()))
            if callback is not None:
                callback(kind, data)

        return on_event


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a terminal IPython): display handles update in place there."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return False
    try:
        shell = ipython_module.get_ipython()
    except Exception:  # an IPython too old or half imported
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None
