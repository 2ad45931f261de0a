"""The ``pydbgauto`` command (also ``python -m pydbgauto``). Thin: it builds arguments and prints.

Exit codes (docs/cli.md): 0 done (watch: at least one capture), 1 no match before the time limit or
the target's exit, 2 usage or bad input, 3 the target cannot be debugged, 4 the debugger or SOS is
missing or failed (or hung), 5 a dump could not be written or verified, 128 + N ended by signal N
(SIGINT 130, SIGHUP 129, SIGTERM 143; the target left running).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Optional, Sequence

from pydbgauto import errors
from pydbgauto.cli.exits import (
    EXIT_DEBUGGER,
    EXIT_DUMP,
    EXIT_INTERRUPTED,
    EXIT_NO_MATCH,
    EXIT_OK,
    EXIT_TARGET,
    EXIT_USAGE,
)
from pydbgauto.cli.printer import Printer
from pydbgauto.cli.watch import _close_progress, build_predicate, load_callable

__all__ = [
    "EXIT_DEBUGGER",
    "EXIT_DUMP",
    "EXIT_INTERRUPTED",
    "EXIT_NO_MATCH",
    "EXIT_OK",
    "EXIT_TARGET",
    "EXIT_USAGE",
    "Printer",
    "build_predicate",
    "load_callable",
    "main",
]


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
    """The ``pydbgauto`` command: one subparser per subcommand, each registered by its module."""
    from pydbgauto.cli import analyze, parse, watch
    from pydbgauto.doctor import register as register_doctor
    from pydbgauto.snapshot import register as register_dump
    from pydbgauto.surveying import register as register_survey

    parser = argparse.ArgumentParser(prog="pydbgauto", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="subcommand")
    watch.register(sub)
    parse.register(sub)
    analyze.register(sub)
    register_doctor(sub)
    register_dump(sub)
    register_survey(sub)
    return parser


def _run_closing_progress(args: argparse.Namespace) -> Any:
    """Run the subcommand; a progress line goes away before anything else is printed about its end."""
    try:
        return args.run(args)
    finally:
        _close_progress()
