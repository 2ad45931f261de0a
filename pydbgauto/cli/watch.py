"""``pydbgauto watch``: its options, the predicate they describe, and the run (one process, or every
process of a name through ``pydbgauto.multi``)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from pydbgauto import errors, processes
from pydbgauto import predicates as preds
from pydbgauto.cli.exits import EXIT_DUMP, EXIT_NO_MATCH, EXIT_OK
from pydbgauto.cli.printer import Printer
from pydbgauto.drivers.choose import default_debugger

__all__ = ["build_predicate", "exit_code", "load_callable", "register", "watch_options"]


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``watch`` to the ``pydbgauto`` command's subparsers."""
    w = sub.add_parser(
        "watch",
        help="watch a .NET process and dump the exceptions you care about",
        description="Watch a .NET process; dump the exceptions that match. Give the target as "
        "--pid, --name, or a command after --.",
    )
    target = w.add_mutually_exclusive_group()
    target.add_argument("--pid", type=int, help="attach to this process id")
    target.add_argument("--name", help="attach to the process with this name")
    w.add_argument("--wait", action="store_true", help="with --name: wait for the process to start")
    w.add_argument(
        "--type",
        dest="types",
        action="append",
        metavar="T",
        help=(
            "exception type name to match (repeatable: any of them); "
            "Name`1 matches each Name<T>; a nested type is Outer+Inner"
        ),
    )
    w.add_argument("--derived", action="store_true", help="--type also matches types derived from it")
    w.add_argument("--message", metavar="REGEX", help="the exception message must match this regex")
    w.add_argument("--hresult", metavar="H", help="the exception HResult (e.g. 0x80131509)")
    w.add_argument("--thrown-in", metavar="REGEX", help="the throw site (method) must match this regex")
    w.add_argument(
        "--when",
        metavar="MODULE:FUNCTION",
        help="a Python predicate: a function taking the ManagedException (or the StopEvent)",
    )
    chance = w.add_mutually_exclusive_group()
    chance.add_argument("--first-chance", action="store_true", help="only first-chance exceptions")
    chance.add_argument(
        "--second-chance", action="store_true", help="only unhandled (second-chance) exceptions"
    )
    w.add_argument("--dump-dir", default=".", help="where dumps and records go (must exist; default: .)")
    w.add_argument(
        "--max-dumps", type=int, default=1, help="stop after this many dumps (default 1; 0: no limit)"
    )
    w.add_argument("--skip-first", type=int, default=0, help="let this many matches pass before dumping")
    w.add_argument("--cooldown", type=float, default=0.0, help="seconds between two dumps")
    w.add_argument("--no-dedupe", action="store_true", help="dump rethrows and repeated stacks too")
    w.add_argument(
        "--timeout", type=float, help="stop watching after this many seconds (with --wait: the wait too)"
    )
    w.add_argument(
        "--min-free-disk",
        type=_size_arg,
        default=None,
        metavar="SIZE",
        help="keep this much free in --dump-dir besides the dump (bytes, or 500M, 2G; default 1G)",
    )
    w.add_argument(
        "--no-verify", action="store_true", help="do not reopen each dump with an independent reader"
    )
    w.add_argument("--debugger", choices=["lldb", "cdb"], help="default: lldb on Linux, cdb on Windows")
    w.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    w.add_argument(
        "program", nargs=argparse.REMAINDER, help="-- program args...: launch it under the debugger"
    )
    w.set_defaults(run=run)
    return w


def build_predicate(args: argparse.Namespace) -> Optional[preds.Predicate]:
    """The predicate the options describe (None: every exception)."""
    parts: List[preds.Predicate] = []
    if args.types:
        type_parts = [preds.exception_type(t, derived=args.derived) for t in args.types]
        parts.append(type_parts[0] if len(type_parts) == 1 else _any(type_parts))
    if args.message:
        parts.append(preds.message_matches(args.message))
    if args.hresult:
        parts.append(preds.hresult(args.hresult))
    if args.thrown_in:
        parts.append(preds.thrown_in(args.thrown_in))
    if args.first_chance:
        parts.append(preds.first_chance())
    if args.second_chance:
        parts.append(preds.second_chance())
    if args.when:
        parts.append(preds.as_predicate(load_callable(args.when)))
    if not parts:
        return None
    result = parts[0]
    for part in parts[1:]:
        result = result & part
    return result


def _size_arg(text: str) -> int:
    """``1073741824``, ``500M``, ``2G``, ``1.5GiB`` -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give bytes, or e.g. 500M, 2G")
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    return int(float(m.group(1)) * units[m.group(2).lower()])


def _any(parts: List[preds.Predicate]) -> preds.Predicate:
    result = parts[0]
    for part in parts[1:]:
        result = result | part
    return result


def load_callable(spec: str) -> Any:
    """``package.module:function`` -> the function; the current folder is importable."""
    module_name, sep, attr_name = spec.partition(":")
    if not sep or not module_name or not attr_name:
        raise errors.ConfigurationError(
            f"--when takes MODULE:FUNCTION (e.g. mychecks:is_timeout), not {spec!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # the user's module may fail in any way
        raise errors.ConfigurationError(
            f"--when: cannot import {module_name}: {type(e).__name__}: {e}"
        ) from e
    try:
        func = getattr(module, attr_name)
    except AttributeError:
        raise errors.ConfigurationError(f"--when: {module_name} has no {attr_name}") from None
    if not callable(func):
        raise errors.ConfigurationError(f"--when: {spec} is not callable")
    return func


def run(args: argparse.Namespace) -> int:
    """The ``watch`` subcommand: watch, print each event, and return the exit code."""
    from pydbgauto.watching import watch

    command = list(args.program)
    if command and command[0] == "--":
        command = command[1:]
    if sum(x is not None and x != [] for x in (args.pid, args.name, command or None)) != 1:
        raise errors.ConfigurationError(
            "give exactly one target: --pid N, --name NAME, or -- command args..."
        )
    if args.wait and not args.name:
        raise errors.ConfigurationError("--wait goes with --name")
    predicate = build_predicate(args)
    from pydbgauto import multi

    if multi.wants_every_process(args):  # several processes of the name, or --wait: one watch per process
        every: Any = multi.MultiPrinter(sys.stdout, args.json)
        return multi.run_cli(args, predicate, _with_progress(args, every))
    printer = Printer(sys.stdout, args.json)
    on_event = _with_progress(args, printer)
    with _shown_output(command, args.debugger, on_event) as (extra, on_event):
        options = watch_options(args, predicate, on_event)
        result = watch(pid=args.pid, name=args.name, launch=command or None, **options, **extra)
    return exit_code(args, result.captures)


@contextlib.contextmanager
def _shown_output(command: List[str], debugger: Optional[str], on_event: Any) -> Iterator[Tuple[Any, Any]]:
    """A target the command launches under lldb writes into files in a folder of ours, shown as the
    watch goes (cli/target_output.py) and removed at the end; else nothing changes."""
    if not command or (debugger or default_debugger()) != "lldb":
        yield {}, on_event
        return
    from pydbgauto.cli.target_output import OutputFollower
    from pydbgauto.drivers.lldb.process import TARGET_STDERR, TARGET_STDOUT

    folder = tempfile.mkdtemp(prefix="pydbgauto-output-")
    files = {"stdout": os.path.join(folder, TARGET_STDOUT), "stderr": os.path.join(folder, TARGET_STDERR)}
    follower = OutputFollower(files, on_event).start()
    launched: List[int] = []

    def noting_the_pid(kind: str, data: Any) -> None:
        if kind == "armed":
            launched.append(int(data["pid"]))
        on_event(kind, data)

    try:
        yield {"session_options": {"output_dir": folder}}, follower.wrap(noting_the_pid)
    finally:
        follower.stop()
        if launched and processes.alive(launched[0]):  # the watch ended first: it goes on there
            sys.stderr.write(
                f"pydbgauto: the launched program (pid {launched[0]}) goes on running, no longer watched;"
                f" its output goes on into {folder}\n"
            )
        else:
            shutil.rmtree(folder, ignore_errors=True)


def watch_options(
    args: argparse.Namespace, predicate: Optional[preds.Predicate], on_event: Any
) -> Dict[str, Any]:
    """The keyword arguments of ``watch`` / ``watch_all`` that the command's options give (all but
    the target), shared by the single-process and the every-process watch."""
    options: Dict[str, Any] = dict(
        wait=args.wait,
        when=predicate,
        dump_dir=args.dump_dir,
        max_dumps=args.max_dumps or None,
        skip_first=args.skip_first,
        cooldown=args.cooldown,
        dedupe=not args.no_dedupe,
        timeout=args.timeout,
        verify=not args.no_verify,
        debugger=args.debugger,
        on_event=on_event,
        live=False,
    )
    if args.min_free_disk is not None:
        options["min_free_disk"] = args.min_free_disk
    return options


def exit_code(args: argparse.Namespace, captures: Sequence[Any]) -> int:
    """5 when a dump failed or (unless --no-verify) was not verified; else 0 with a capture, 1 without."""
    if any(c.dump is None or (not args.no_verify and not c.dump.verified) for c in captures):
        return EXIT_DUMP
    return EXIT_OK if captures else EXIT_NO_MATCH


_PROGRESS: List[Any] = []  # the terminal progress lines shown by this command, closed when it ends


def _with_progress(args: argparse.Namespace, printer: Any) -> Any:
    """``printer``, with a one-line progress display on stderr when stderr is a terminal (not --json)."""
    if args.json or not sys.stderr.isatty():
        return printer
    from pydbgauto.progress import TerminalProgress

    live = TerminalProgress(sys.stderr)
    _PROGRESS.append(live)
    return live.wrap(printer)


def _close_progress() -> None:
    while _PROGRESS:
        _PROGRESS.pop().close()
