"""The storm figures: handled exceptions per second a target keeps up, with no debugger, under the bare
lldb floor (one auto-continuing breakpoint at the same place per throw: tests/bench/floor_in_lldb.py) and
under pydbgauto's watch (predicate decided in lldb's agent, or a round trip to Python)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Dict, Tuple

import pydbgauto as pda
from pydbgauto.watching import watch
from tests.bench.common import APPS, LLDB, report

FLOOR_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_in_lldb.py")


def storm_rate(out: str) -> float:
    for line in out.splitlines():
        if line.startswith("STORM"):
            return float(line.split("rate=")[1])
    raise RuntimeError(f"no STORM line in {out[-300:]!r}")


def bare_lldb_floor(argv: list, folder: str) -> Tuple[float, Dict[str, object]]:
    """The storm's rate under a bare lldb with one auto-continuing breakpoint per throw."""
    out = os.path.join(folder, "floor.stdout")
    result = os.path.join(folder, "floor.json")
    env = dict(os.environ, FLOOR_ARGV=json.dumps(argv), FLOOR_STDOUT=out, FLOOR_RESULT=result)
    subprocess.run(
        [LLDB, "--no-lldbinit", "--batch", "-o", f"command script import {FLOOR_SCRIPT}"],
        env=env,
        capture_output=True,
        timeout=600,
    )
    with open(out) as f, open(result) as g:
        return storm_rate(f.read()), json.load(g)


def bench_storm(rt: str, folder: str, seconds: float) -> None:
    argv = [APPS[rt], "storm", "1000000", str(seconds)]
    baseline = storm_rate(subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout)
    floor, how = bare_lldb_floor(argv, tempfile.mkdtemp(dir=folder))
    report(
        f"storm, bare lldb floor [{rt}]",
        floor,
        "exc/s",
        "same storm, no debugger",
        baseline,
        f"{how['hits']} hits at {how['where']}",
    )
    # The storm throws KeyNotFoundException("storm"). A type that never matches is ruled out in the target
    # (after the first throw); so is, on .NET 8, a message without the regex's literal (the prefilter, after
    # the field reader's checks); a regex whose literal every message has is decided by the agent: on .NET 8
    # the stub asks it over a socket with no stop (asking.py), on .NET 10 at every stop; so is thrown_in, its
    # throw site named by the chain of return addresses a stop once showed it with (throw_sites.py); a Python
    # callable: on .NET 8 the stub asks pydbgauto's Python (python_question.py), on .NET 10 the agent asks it
    # at every stop (stop_question.py).
    never_type = pda.exception_type("System.DivideByZeroException")
    never_message = pda.message_matches("no storm message says this")
    every_stop_message = pda.message_matches("^storm(?!$)")
    for label, when in (
        ("type predicate (in-target filter)", never_type),
        ("message predicate, literal in no message (in-target prefilter on .NET 8)", never_message),
        ("message predicate, literal in every message (decided by the agent)", every_stop_message),
        (
            "throw-site predicate, thrown_in (asked with no stop on .NET 8; decided by the agent at the stop"
            " on .NET 10)",
            pda.thrown_in("NoSuchMethod"),
        ),
        (
            "Python callable (asked: by the stub, no stop, on .NET 8; by the agent at each stop on .NET 10)",
            lambda exc: False,
        ),
    ):
        out_dir = tempfile.mkdtemp(dir=folder)
        result = watch(
            launch=argv,
            when=when,
            dump_dir=out_dir,
            max_dumps=1,
            timeout=seconds * 20 + 60,
            verify=False,
            session_options={"output_dir": out_dir},
        )
        with open(os.path.join(out_dir, "target.stdout")) as f:
            rate = storm_rate(f.read())
        note = f"{result.events_seen} exceptions logged"
        report(f"storm under watch, {label} [{rt}]", rate, "exc/s", "same storm, no debugger", baseline, note)
        report(
            f"storm under watch, {label} [{rt}]", rate, "exc/s", "same storm, bare lldb floor", floor, note
        )
