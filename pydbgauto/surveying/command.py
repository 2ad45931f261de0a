"""``pydbgauto survey (--pid N | --name X) --seconds S [--top N] [--json]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any, Mapping

from pydbgauto import arg_types
from pydbgauto.errors import ConfigurationError, NoSuchProcessError
from pydbgauto.surveying.run import COST_WARNING, SurveyCostWarning, survey
from pydbgauto.surveying.view import summary_text


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``survey`` to the ``pydbgauto`` command's subparsers."""
    p = subparsers.add_parser(
        "survey",
        help="watch every exception of a process for a while, dump nothing, and summarise them",
        description="Watch every exception a .NET process throws for --seconds, without dumping, and "
        "summarise them by type, message pattern (numbers, hex and GUIDs folded), throw site and thread, "
        "with counts and rates, and the `pydbgauto watch` command line for each row. Every exception "
        "stops the process (about 0.1 s each). Exit codes: 0 exceptions seen, 1 none seen, 2 bad input, "
        "3 the target cannot be debugged, 4 the debugger or SOS is missing or failed, 130 interrupted.",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=arg_types.positive_int, help="the process id")
    target.add_argument("--name", help="the process name (every process of that name, one debugger each)")
    p.add_argument("--seconds", type=arg_types.positive_seconds, required=True, help="how long to watch")
    p.add_argument(
        "--top", type=arg_types.positive_int, default=20, help="rows to print (default 20; --json: all)"
    )
    p.add_argument("--debugger", choices=["lldb", "cdb"], help="default: lldb on Linux, cdb on Windows")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(run=run)
    return p


def _print_armed(kind: str, data: Mapping[str, Any], seconds: float) -> None:
    if kind == "armed":
        print(f"pydbgauto survey: watching pid {data['pid']} for {seconds:g} s", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """The ``survey`` subcommand; errors go up to ``cli.main``, which maps them to exit codes."""
    from pydbgauto import processes

    pid = args.pid
    if args.name is not None:
        if not args.name.strip() or "/" in args.name:
            raise ConfigurationError(f"--name takes a process name such as ThrowingApp, not {args.name!r}")
        if not processes.find_pids(args.name):  # refused before the warning and any debugger
            raise NoSuchProcessError(f"no process called {args.name!r} is running")
    elif os.path.isdir("/proc") and not os.path.isdir(f"/proc/{pid}"):
        raise NoSuchProcessError(f"no process with pid {pid} is running")
    print(f"pydbgauto survey: {COST_WARNING}", file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SurveyCostWarning)
        result = survey(
            pid,
            name=args.name,
            seconds=args.seconds,
            debugger=args.debugger,
            live=False,
            on_event=lambda kind, data: _print_armed(kind, data, args.seconds),
        )
    if args.json:
        print(
            json.dumps(
                dict(result.to_dict(), watch_commands={r.n: result.watch_command(r.n) for r in result.rows})
            )
        )
    else:
        print(summary_text(result, args.top))
    return 0 if result.total else 1
