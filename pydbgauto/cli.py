"""The ``pydbgauto`` command (also ``python -m pydbgauto``). Thin: it builds arguments and prints.

Exit codes (docs/cli.md): 0 done (watch: at least one capture), 1 no match before the time limit or
the target's exit, 2 usage or bad input, 3 the target cannot be debugged, 4 the debugger or SOS is
missing or failed (or hung), 5 a dump could not be written or verified, 128 + N ended by signal N
(SIGINT 130, SIGHUP 129, SIGTERM 143; the target left running).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import signal
import sys
import threading
import time
from typing import Any, List, Mapping, Optional, Sequence, TextIO

from pydbgauto import errors
from pydbgauto import predicates as preds

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE, EXIT_TARGET, EXIT_DEBUGGER, EXIT_DUMP, EXIT_INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    5,
    130,
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "subcommand", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(_run_closing_progress(args))
    except errors.Interrupted as e:
        name = signal.Signals(e.signum).name if e.signum in signal.Signals._value2member_map_ else e.signum
        print(f"pydbgauto: ended by {name}; detached, the target was left running", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("pydbgauto: interrupted; the target was left running", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors.ConfigurationError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_USAGE
    except errors.TargetError as e:
        print(f"pydbgauto: the target cannot be debugged: {e}", file=sys.stderr)
        return EXIT_TARGET
    except (errors.DebuggerNotFoundError, errors.DebuggerError) as e:
        print(f"pydbgauto: debugger problem: {e}", file=sys.stderr)
        return EXIT_DEBUGGER
    except errors.DumpError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_DUMP
    except errors.PydbgautoError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_DEBUGGER


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pydbgauto", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="subcommand")

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
        help="exception type name to match (repeatable: any of them)",
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
    w.set_defaults(run=_watch)

    p = sub.add_parser("parse", help="parse saved SOS text (pe, clrstack, clrthreads) and print it as JSON")
    p.add_argument("kind", choices=["pe", "clrstack", "clrstack-all", "threads", "events", "dump-reply"])
    p.add_argument("file", help="a text file, or - for standard input")
    p.set_defaults(run=_parse)

    from pydbgauto.analyze import register as register_analyze
    from pydbgauto.doctor import register as register_doctor

    register_analyze(sub)
    register_doctor(sub)
    from pydbgauto.snapshot import register as register_dump

    register_dump(sub)
    from pydbgauto.surveying import register as register_survey

    register_survey(sub)
    return parser


# ----- watch ------------------------------------------------------------------------------------------


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


def _watch(args: argparse.Namespace) -> int:
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
    printer = _Printer(sys.stdout, args.json)
    result = watch(
        pid=args.pid,
        name=args.name,
        launch=command or None,
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
        on_event=_with_progress(args, printer),
        live=False,
        **({} if args.min_free_disk is None else {"min_free_disk": args.min_free_disk}),
    )
    if any(c.dump is None or (not args.no_verify and not c.dump.verified) for c in result.captures):
        return EXIT_DUMP
    return EXIT_OK if result.captures else EXIT_NO_MATCH


_PROGRESS: List[Any] = []  # the terminal progress lines shown by this command, closed when it ends


def _with_progress(args: argparse.Namespace, printer: "_Printer") -> Any:
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


def _run_closing_progress(args: argparse.Namespace) -> Any:
    """Run the subcommand; a progress line goes away before anything else is printed about its end."""
    try:
        return args.run(args)
    finally:
        _close_progress()


class _Printer:
    """One line per exception seen and per dump; a spinner on a terminal while a dump is written."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self._spinner: Optional[threading.Event] = None

    def __call__(self, kind: str, data: Mapping[str, Any]) -> None:
        if self.as_json:
            self._json(kind, data)
        else:
            self._text(kind, data)
        self.out.flush()

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
                self.out.write(f"#{ev.sequence} the target exited with status {ev.exit_status}\n")
                return
            msg = ev.exception.message if ev.exception and ev.exception.message else ""
            if ev.crash is not None:  # "stack-overflow", "fail-fast: <its message>", ...
                msg = f"{ev.crash.kind}: {ev.crash.message}" if ev.crash.message else ev.crash.kind
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


# ----- parse ------------------------------------------------------------------------------------------


def _parse(args: argparse.Namespace) -> int:
    from pydbgauto import sos

    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    parsers = {
        "pe": sos.parse_pe,
        "clrstack": sos.parse_clrstack,
        "clrstack-all": sos.parse_clrstack_all,
        "threads": sos.parse_threads,
        "events": sos.parse_events,
        "dump-reply": sos.parse_dump_result,
    }
    result = parsers[args.kind](text)
    if result is None:
        print("null")
    elif isinstance(result, (list, tuple)):
        print(json.dumps([r.to_dict(include_raw=False) for r in result], indent=1))
    else:
        print(json.dumps(result.to_dict(include_raw=False), indent=1))
    return EXIT_OK


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        raise errors.ConfigurationError(f"cannot read {path}: {e.strerror}") from e


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
