"""Golden transcripts: pick the parser for a transcript, and write its ``.expected.json``.

A transcript is ``tests/transcripts/**/<name>.txt``; its expected result sits beside it as
``<name>.expected.json``. The parser comes from an optional first-line header
``# parser: <kind>`` (the header is not passed to the parser), else from the file-name
prefix: ``pe-``, ``clrstack-all-``, ``clrstack-``, ``clrthreads-`` (or ``threads-``),
``events-``, ``dump-``.

The JSON holds ``{"parser": kind, "result": ...}`` (``to_dict(include_raw=False)``; lists for
parsers that return several objects; null for ``pe`` without an exception) or
``{"parser": kind, "error": {"type": "SosError", "message": ...}}``.

Usage (the recorder calls this; a person reviews the JSON before committing it)::

    /usr/bin/python3 -m tests.sos.regen_expected tests/transcripts/lldb/pe-throw.txt [...]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from pydbgauto.errors import ParseError, SosError
from pydbgauto.sos import (
    parse_clrstack,
    parse_clrstack_all,
    parse_dump_result,
    parse_events,
    parse_pe,
    parse_threads,
)


def _pe(text: str) -> Any:
    exc = parse_pe(text)
    return None if exc is None else exc.to_dict(include_raw=False)


PARSERS: Dict[str, Callable[[str], Any]] = {
    "pe": _pe,
    "clrstack": lambda text: parse_clrstack(text).to_dict(include_raw=False),
    "clrstack-all": lambda text: [s.to_dict(include_raw=False) for s in parse_clrstack_all(text)],
    "clrthreads": lambda text: parse_threads(text).to_dict(include_raw=False),
    "events": lambda text: [e.to_dict(include_raw=False) for e in parse_events(text)],
    "dump": lambda text: parse_dump_result(text).to_dict(include_raw=False),
}
# Longest prefix first: "clrstack-all-" must win over "clrstack-".
_PREFIXES: Tuple[Tuple[str, str], ...] = (
    ("clrstack-all-", "clrstack-all"),
    ("clrstack-", "clrstack"),
    ("clrthreads-", "clrthreads"),
    ("threads-", "clrthreads"),
    ("events-", "events"),
    ("dump-", "dump"),
    ("pe-", "pe"),
)
_HEADER = re.compile(r"^#\s*parser:\s*([\w-]+)\s*\n")


def split_header(path: Path, text: str) -> Tuple[str, str]:
    """(parser kind, text for the parser) for one transcript."""
    m = _HEADER.match(text)
    if m:
        kind = m.group(1)
        if kind not in PARSERS:
            raise ValueError(f"{path}: unknown parser {kind!r} in header; known: {sorted(PARSERS)}")
        return kind, text[m.end() :]
    for prefix, kind in _PREFIXES:
        if path.name.startswith(prefix):
            return kind, text
    raise ValueError(f"{path}: no '# parser:' header and no known name prefix ({[p for p, _ in _PREFIXES]})")


def read_transcript(path: Path) -> str:
    # newline="" keeps CRLF as recorded: the parsers must take it.
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def expected_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".txt")] + ".expected.json")


def run_parser(path: Path) -> Dict[str, Any]:
    kind, text = split_header(path, read_transcript(path))
    try:
        return {"parser": kind, "result": PARSERS[kind](text)}
    except (SosError, ParseError) as e:
        return {"parser": kind, "error": {"type": type(e).__name__, "message": str(e)}}


def dumps(data: Dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: List[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name in argv:
        path = Path(name)
        out = expected_path(path)
        out.write_text(dumps(run_parser(path)), encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
