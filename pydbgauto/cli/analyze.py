"""``pydbgauto analyze <dump>``: open a dump with an independent reader and print what is in it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydbgauto.cli.exits import EXIT_DEBUGGER, EXIT_DUMP, EXIT_NO_MATCH, EXIT_OK, EXIT_USAGE
from pydbgauto.errors import ConfigurationError, DumpError, PydbgautoError
from pydbgauto.readers import READERS

__all__ = ["register", "run"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``analyze`` to the ``pydbgauto`` command's subparsers."""
    p = subparsers.add_parser(
        "analyze",
        help="open a dump and report its exceptions, managed stacks and threads",
        description="Open a dump (pydbgauto's, createdump's, dotnet-dump collect's or gcore's) with an "
        "independent reader and report each thread's exception, the managed stacks and the "
        "thread table. Beside a capture record (<dump>.json) it also says whether they agree. "
        "Exit codes: 0 read (and matching its record, if any), 1 read but NOT matching its "
        "capture record, 2 bad input, 4 reader missing or failed, 5 unreadable dump.",
    )
    p.add_argument("dump", help="the dump (core) file")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the analysis as JSON")
    out.add_argument("--html", metavar="FILE", help="write an HTML report to FILE (- for standard output)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the reader (default 300)")
    p.add_argument(
        "--reader",
        choices=READERS,
        default="auto",
        help="auto (default): dotnet-dump, else lldb + SOS on Linux; cdb on Windows",
    )
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """The ``analyze`` subcommand: print the analysis; return the exit code."""
    from pydbgauto.analysis import analyze

    try:
        analysis = analyze(args.dump, timeout=args.timeout, reader=getattr(args, "reader", "auto"))
    except ConfigurationError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DumpError as e:
        print(f"pydbgauto: {e}", file=sys.stderr)
        return EXIT_DUMP
    except PydbgautoError as e:
        print(f"pydbgauto: reader problem: {e}", file=sys.stderr)
        return EXIT_DEBUGGER
    if args.json:
        print(json.dumps(analysis.to_dict(include_raw=False), indent=1))
    elif args.html:
        page = analysis.to_html_page()
        if args.html == "-":
            sys.stdout.write(page)
        else:
            try:
                with open(args.html, "w", encoding="utf-8") as f:
                    f.write(page)
            except OSError as e:
                print(f"pydbgauto: cannot write {args.html}: {e.strerror}", file=sys.stderr)
                return EXIT_USAGE
            print(f"wrote {args.html}")
    else:
        print(analysis)
    return EXIT_NO_MATCH if analysis.matches_capture is False else EXIT_OK
