"""The agent's side of the stub's question (verdict_ask.py): a thread of lldb's Python that answers each
request while the agent's main thread waits in ``Continue`` (lldb lets go of the GIL there: proved in
docs/linux-fast-filter.md, "A verdict without a stop").

The socket has an abstract name (no file, so a target run by another user can connect); each question is
a connection of its own, served only when it comes from the target's pid (``SO_PEERCRED``): no other
process can hand the agent records or get answers (an exception message may hold secrets, and the agent
tells nothing back but one byte). ``decide(request)`` says True to let the throw go on
(answer ``n``); anything else, an error in it included, answers ``y``: the thread takes the trap, and the
agent decides at the stop as without the question. What was let go is kept for the decision log
(``take_passed``).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections import deque
from typing import Callable, Deque, List, Optional, Tuple

from pydbgauto.drivers.lldb.verdict_ask import REQUEST_SIZE, Request

# (request, time) of each throw let go without a stop
Passed = Tuple[Request, float]
# At most this many wait to be taken (a caller that never asks for the log while the target throws on
# would otherwise grow lldb without bound); the rest are counted (``unlogged``), not kept.
MAX_KEPT = 200_000


class VerdictServer:
    def __init__(self, pid: int, decide: Callable[[Request], bool]) -> None:
        self.pid = pid
        self.pids = {pid}  # whose connections are served: the target's, and lldb's where it asks (allow)
        self.decide = decide
        self.name = f"\0pydbgauto-verdicts-{os.getpid()}-{pid}-{os.urandom(6).hex()}"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self._listener.bind(self.name)
        self._listener.listen(4)
        self._passed: Deque[Passed] = deque()
        self._conn: Optional[socket.socket] = None
        self._closed = threading.Event()
        self.answered = self.stopped = self.refused = self.unlogged = 0
        self.error: Optional[str] = None
        self._thread = threading.Thread(target=self._serve, name="pydbgauto-verdicts", daemon=True)
        self._thread.start()

    def take_passed(self) -> List[Passed]:
        """What was let go since the last call (the answering thread appends; only the agent takes)."""
        taken: List[Passed] = []
        while self._passed:
            taken.append(self._passed.popleft())
        return taken

    def has_passed(self) -> bool:
        return bool(self._passed)

    def close(self) -> None:
        """No more answers: an asking thread then finds no listener (and the stub turns the question off);
        one waiting for its verdict sees end of file."""
        self._closed.set()
        for s in (self._conn, self._listener):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(2.0)
        self._listener.close()

    def _serve(self) -> None:
        try:
            while not self._closed.is_set():
                conn, _ = self._listener.accept()
                with conn:
                    self._conn = conn
                    self._answer(conn)
                    self._conn = None
        except OSError as e:
            if not self._closed.is_set():
                self.error = str(e)

    def _answer(self, conn: socket.socket) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        if struct.unpack("3i", creds)[0] not in self.pids:
            self.refused += 1
            return
        record = conn.recv(REQUEST_SIZE + 64)
        if not record:
            return
        request = Request.parse(record) if len(record) == REQUEST_SIZE else None
        go_on = False
        if request is not None:
            try:
                go_on = self.decide(request) is True
            except Exception:  # noqa: BLE001 - a stop decides it instead
                go_on = False
        if go_on:
            if len(self._passed) < MAX_KEPT:
                self._passed.append((request, time.time()))  # type: ignore[arg-type]
            else:
                self.unlogged += 1
            self.answered += 1
        else:
            self.stopped += 1
        conn.send(b"n" if go_on else b"y")
