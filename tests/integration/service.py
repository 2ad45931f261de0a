"""The sample service (examples/ServiceApp, built by scripts/setup) for tests and scripts.

:class:`Service` starts it on a free loopback port, waits for its ``READY <pid> <port>`` line, talks to
it with the standard library's HTTP client (127.0.0.1 only, no proxy, a time limit on every request),
reads ``/stats`` and stops it (``/exit``, then a kill if it does not go). :class:`Load` is a client thread
that repeats one request, bounded in count and in time, and stops by itself. No pytest in here: the
fixtures in ``tests/integration/conftest.py`` wrap it, and ``scripts/record-transcripts`` and
``scripts/setup`` use it directly::

    /usr/bin/python3 -m tests.integration.service .build/service-net10/ServiceApp   # a quick check
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICES = {
    "net8": os.path.join(ROOT, ".build", "service-net8", "ServiceApp"),
    "net10": os.path.join(ROOT, ".build", "service-net10", "ServiceApp"),
}
HOST = "127.0.0.1"  # the service listens on loopback only; nothing here ever talks to another address
KINDS = ("handled", "unhandled", "background")
DEFAULT_TYPE = "System.InvalidOperationException"
# The types examples/ServiceApp/Program.cs can throw (Thrower.Factories), in the order /types gives them.
TYPES = (
    "ServiceApp.OrderRejectedException",
    "System.ArgumentException",
    "System.Collections.Generic.KeyNotFoundException",
    "System.FormatException",
    "System.InvalidOperationException",
    "System.TimeoutException",
)
READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

# Never through a proxy: an http_proxy in the environment must not send loopback requests elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceError(Exception):
    """The service did not start, answered something unexpected, or did not stop."""


class Reply:
    """One HTTP answer: status code, body text, and the body as JSON when it is JSON."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:200]!r})"


class Service:
    """One running ServiceApp. Use as a context manager, or call :meth:`stop` (always safe to repeat)."""

    def __init__(
        self,
        path: str,
        port: int = 0,
        ready_timeout: float = READY_TIMEOUT,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.path = path
        self.lines: List[str] = []
        self.errors: List[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [path, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=None if env is None else {**os.environ, **env},
        )
        # Both pipes drained all the time: a service blocked on a full pipe looks like a hang.
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            ready = self.wait_for_line("READY ", ready_timeout)
            if ready is None:
                raise ServiceError(
                    f"{path}: no READY line in {ready_timeout:g} s (exit {self.proc.poll()}): "
                    f"stdout {self.lines}, stderr {self.errors}"
                )
            _, pid, port_text = ready.split()
            self.pid = int(pid)
            self.port = int(port_text)
            if self.pid != self.proc.pid:
                raise ServiceError(f"READY names pid {self.pid}, the process is {self.proc.pid}")
        except BaseException:
            self.kill()
            raise

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read(self, stream: Any, into: List[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, prefix: str, timeout: float) -> Optional[str]:
        """The first stdout line starting with ``prefix``; None if none came in time or the output ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._readers[0].is_alive():
                    return None
                self._changed.wait(min(remaining, 1.0))

    # -- the client ---------------------------------------------------------------------------

    def url(self, path: str, params: Optional[Mapping[str, Any]] = None) -> str:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        return f"http://{HOST}:{self.port}{path}{query}"

    def get(
        self, path: str, params: Optional[Mapping[str, Any]] = None, timeout: float = REQUEST_TIMEOUT
    ) -> Reply:
        """GET one path; any HTTP status is a Reply (a 500 is an answer, not an error)."""
        request = urllib.request.Request(self.url(path, params), method="GET")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return Reply(response.status, response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            with e:
                return Reply(e.code, e.read().decode("utf-8", "replace"))

    def _expect(self, reply: Reply, status: int, what: str) -> Reply:
        if reply.status != status:
            raise ServiceError(f"{what}: expected HTTP {status}, got {reply}")
        return reply

    def handled(self, type_name: str = DEFAULT_TYPE, n: int = 1) -> Dict[str, Any]:
        """Throws and catches ``type_name`` n times in one request."""
        reply = self.get("/handled", {"type": type_name, "n": n})
        return dict(self._expect(reply, 200, "handled").json())

    def unhandled(self, type_name: str = DEFAULT_TYPE) -> Reply:
        """Throws ``type_name`` out of the request handler; the framework answers 500."""
        return self._expect(self.get("/unhandled", {"type": type_name}), 500, "unhandled")

    def background(self, type_name: str = DEFAULT_TYPE, n: int = 1, wait: bool = True) -> Dict[str, Any]:
        """The background service throws and catches ``type_name`` n times (waited for unless wait=False)."""
        reply = self.get("/background", {"type": type_name, "n": n, "wait": int(wait)})
        return dict(self._expect(reply, 200 if wait else 202, "background").json())

    def stats(self) -> Dict[str, Any]:
        """``/stats``: pid, runtime, requests, background_pending, total, kinds {kind: {type: n}}, types."""
        return dict(self._expect(self.get("/stats"), 200, "stats").json())

    def types(self) -> List[str]:
        return list(self._expect(self.get("/types"), 200, "types").json())

    def warm_up(self, requests: int = 200, n: int = 10, settle: float = 1.0) -> Dict[str, Any]:
        """Serves ``requests`` requests of each kind (``n`` handled and ``n`` background throws each, one
        unhandled), so that its throw paths have been called thousands of times and tiered compilation has
        had the time (``settle`` seconds after) to replace them: a warm service, as after hours of work.
        Bounded: 3 * ``requests`` requests, each with its own time limit. Returns /stats."""
        if requests < 1 or n < 1:
            raise ValueError("warm_up needs at least one request and one throw per request")
        for _ in range(requests):
            self.handled(DEFAULT_TYPE, n)
            self.unhandled(DEFAULT_TYPE)
            self.background(DEFAULT_TYPE, n)
        time.sleep(settle)
        return self.stats()

    def wait_idle(self, timeout: float = REQUEST_TIMEOUT, interval: float = 0.05) -> Dict[str, Any]:
        """Polls /stats (bounded by ``timeout``) until no background job is pending; returns the stats."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["background_pending"] == 0:
                return stats
            if time.monotonic() >= deadline:
                raise ServiceError(f"background work still pending after {timeout:g} s: {stats}")
            time.sleep(interval)

    # -- stopping -----------------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """Asks it to exit (``/exit``), waits, kills it if it does not go; returns the exit status."""
        if self.proc.poll() is None:
            try:
                self.get("/exit", timeout=min(timeout, 10.0))
            except (OSError, urllib.error.URLError):
                pass  # stopped under a debugger, or already going: the kill below ends it
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """Kills this service's process if it runs (by its own handle), reaps it, closes its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=STOP_TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not any(r.is_alive() for r in self._readers):
                stream.close()


class Load:
    """A client thread that repeats one GET, at most ``count`` times and for at most ``seconds``.

    It stops by itself at either bound, at :meth:`stop`, or at the first failed request (kept in
    ``error``). ``statuses`` counts the answers by HTTP status.
    """

    def __init__(
        self,
        service: Service,
        path: str,
        params: Optional[Mapping[str, Any]] = None,
        count: int = 1000,
        seconds: float = 30.0,
        pause: float = 0.0,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        if count < 1 or seconds <= 0:
            raise ValueError("a load needs a positive count and time limit")
        self.service = service
        self.path = path
        self.params = dict(params or {})
        self.count = count
        self.seconds = seconds
        self.pause = pause
        self.timeout = timeout
        self.sent = 0
        self.statuses: Dict[int, int] = {}
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load {path}", daemon=True)

    def __enter__(self) -> "Load":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "Load":
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        try:
            while self.sent < self.count and time.monotonic() < deadline and not self._stop.is_set():
                reply = self.service.get(self.path, self.params, timeout=self.timeout)
                self.sent += 1
                self.statuses[reply.status] = self.statuses.get(reply.status, 0) + 1
                if self.pause:
                    self._stop.wait(self.pause)
        except BaseException as e:  # noqa: BLE001 - kept for the test to report
            self.error = e

    def stop(self, timeout: float = REQUEST_TIMEOUT + 5) -> "Load":
        """Asks the thread to stop after its current request and waits for it."""
        self._stop.set()
        self.join(timeout)
        return self

    def join(self, timeout: Optional[float] = None) -> "Load":
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise ServiceError(f"the load on {self.path} did not stop in {timeout} s")
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def expected_stats(calls: Sequence[Sequence[Any]]) -> Dict[str, Dict[str, int]]:
    """The ``kinds`` part of /stats that a sequence of (kind, type, n) throws must give."""
    kinds: Dict[str, Dict[str, int]] = {k: {} for k in KINDS}
    for kind, type_name, n in calls:
        kinds[kind][type_name] = kinds[kind].get(type_name, 0) + int(n)
    return kinds


def check(path: str) -> int:
    """Start the service, one throw of each kind, check /stats, stop it. 0 when all is right."""
    with Service(path) as service:
        service.handled(n=2)
        service.unhandled()
        service.background(n=3)
        stats = service.stats()
    want = expected_stats(
        [("handled", DEFAULT_TYPE, 2), ("unhandled", DEFAULT_TYPE, 1), ("background", DEFAULT_TYPE, 3)]
    )
    if stats["kinds"] != want or service.proc.returncode != 0 or service.lines[-1:] != ["DONE 6"]:
        print(
            f"{path}: unexpected: stats {stats}, exit {service.proc.returncode}, {service.lines}",
            file=sys.stderr,
        )
        return 1
    print(f"{path}: .NET {stats['runtime']}, port {service.port}, {stats['total']} throws counted")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python3 -m tests.integration.service PATH/TO/ServiceApp", file=sys.stderr)
        sys.exit(2)
    sys.exit(check(sys.argv[1]))
