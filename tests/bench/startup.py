"""Attach to armed, and throw to stopped event, on a cold and a warm target (scripts/bench).

attach    Session.attach + break_on_clr_exceptions, vs a bare ``lldb -p PID`` attach + detach as a user runs
          it (and the same bare lldb given pydbgauto's start-up settings), interleaved in one run
stop      a throw (the command sent to the app) to the stopped event with pe + clrstack parsed: the first
          throw after the attach (SOS answers) and the same throw again, 8 times (the agent's stop cache
          answers; on .NET 8 the first 3 stops also check a bare pe), vs SOS's own clrstack + pe at a
          fresh stop (what the cache saves)
warm      400 throws in bursts before the attach, so tiered compilation has rewritten the runtime's code;
          and the events seen for throws made after the attach
"""

from __future__ import annotations

import statistics
import time
from typing import List

import pydbgauto as pda
from pydbgauto.drivers.lldb.lldb_settings import START_UP_SETTINGS
from pydbgauto.session import Session
from tests.bench.common import APPS, bare_lldb_attach, report
from tests.integration.conftest import WaitingApp


def warm_up(app: WaitingApp, bursts: int = 4, each: int = 100) -> None:
    for i in range(bursts):
        app.send(f"repeat {each}")
        deadline = time.monotonic() + 60
        while sum(1 for line in list(app.lines) if line == f"OK repeat {each}") <= i:
            if time.monotonic() > deadline:
                raise RuntimeError("the sample app did not finish its warm-up burst")
            time.sleep(0.05)
        time.sleep(0.4)
    time.sleep(1.5)


def bench_warm_events(rt: str, throws: int = 300) -> None:
    """Attach to a warm target and count the events of ``throws`` throws."""
    app = WaitingApp(APPS[rt])
    try:
        warm_up(app)
        with Session.attach(pid=app.pid) as s:
            s.break_on_clr_exceptions()
            app.send(f"repeat {throws}")
            seen = 0
            try:
                while seen < throws:
                    s.wait_for_event(10, parse=False)
                    seen += 1
            except pda.DebuggerTimeoutError:
                pass
        report(f"warm: events seen [{rt}]", seen, "events", "throws made after the attach", throws)
    finally:
        app.finish()


def _throw_to_event(app: WaitingApp, s: Session) -> float:
    sent = time.monotonic()
    app.send("invalid-op")
    s.wait_for_event(60)
    return time.monotonic() - sent


def _sos_at_a_fresh_stop(app: WaitingApp, s: Session) -> float:
    """SOS's own clrstack + pe at a new stop (the stop itself not counted)."""
    app.send("invalid-op")
    event = s.wait_for_event(60, parse=False)
    started = time.monotonic()
    s.execute("clrstack", thread_id=event.thread_id)
    s.execute(f"pe 0x{event.exception_address:x}")
    return time.monotonic() - started


def bench_attach_and_stop(rt: str, repeats: int, warm: bool = False) -> None:
    app = WaitingApp(APPS[rt])
    state = "warm" if warm else "cold"
    try:
        if warm:
            warm_up(app)
        bare: List[float] = []
        bare_set: List[float] = []
        attach: List[float] = []
        first: List[float] = []
        again: List[float] = []
        sos: List[float] = []
        for _ in range(repeats):  # interleaved, so a change in the machine's load hits all alike
            bare.append(bare_lldb_attach(app.pid))
            bare_set.append(bare_lldb_attach(app.pid, START_UP_SETTINGS))
            started = time.monotonic()
            with Session.attach(pid=app.pid) as s:
                s.break_on_clr_exceptions()
                attach.append(time.monotonic() - started)
                first.append(_throw_to_event(app, s))
                again.extend(_throw_to_event(app, s) for _ in range(8))
                sos.extend(_sos_at_a_fresh_stop(app, s) for _ in range(2))
        median = statistics.median
        report(
            f"{state}: attach to armed [{rt}]",
            median(attach),
            "s",
            "bare lldb -p attach+detach",
            median(bare),
        )
        report(
            f"{state}: attach to armed [{rt}]",
            median(attach),
            "s",
            "the same, lldb given our settings",
            median(bare_set),
            "; ".join(START_UP_SETTINGS),
        )
        report(
            f"{state}: throw to event, first after attach [{rt}]",
            median(first),
            "s",
            "SOS clrstack + pe at a fresh stop",
            median(sos),
            "SOS answers",
        )
        report(
            f"{state}: throw to event, same throw again [{rt}]",
            median(again),
            "s",
            "SOS clrstack + pe at a fresh stop",
            median(sos),
            "the agent's stop cache answers",
        )
    finally:
        app.finish()
