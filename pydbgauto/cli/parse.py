"""``pydbgauto parse``: saved SOS text (pe, clrstack, clrthreads, ...) printed as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydbgauto import errors
from pydbgauto.cli.exits import EXIT_OK

__all__ = ["register"]

KINDS = ["pe", "clrstack", "clrstack-all", "threads", "events", "dump-reply"]


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``parse`` to the ``pydbgauto`` command's subparsers."""
    p = sub.add_parser("parse", help="parse saved SOS text (pe, clrstack, clrthreads) and print it as JSON")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("file", help="a text file, or - for standard input")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print the parsed text as JSON (``null`` when there is nothing to parse)."""
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
