"""What the in-target filter may rule out by an exception's message and HResult (pure: no lldb).

A predicate's **necessary condition** over the two fields the stub can read itself: a list of clauses,
each "the message contains this literal" and/or "the HResult is this code". A throw that holds none of
them cannot match, so the stub (filter_stub.py) lets it through without a stop; one that holds a clause
stops, and the agent decides the whole predicate as before. The condition is only ever weaker than the
predicate: ``None`` (no condition) wherever it cannot tell.

The literal of a ``message_matches`` regex is the longest run of plain characters that every match must
contain, read from Python's own regex parse tree; a regex with none (``a|b`` at the top, ``\\d+``, ...)
gives no condition. ``re.search`` on a message without the literal cannot match, and a null message never
matches (predicates.py), so the stub's test (UTF-16 code units compared) is exact.

.NET 8 only: there the funnel (RaiseTheExceptionInternalOnly) runs in the runtime's cooperative mode, so no
garbage collection can move or free the exception and its message while the stub reads them. .NET 9+'s
funnel is a QCall (preemptive mode): the stub reads only the MethodTable there.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

try:
    from re import _constants as _sre_constants  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python < 3.11
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from pydbgauto.drivers.lldb.filter_stub import PAGE, PF_TABLE

MAX_CLAUSES = 15  # then the table's end
MAX_LITERAL = 64  # characters kept of a longer literal (any part of it is as necessary)
KIND_HRESULT, KIND_LITERAL = 1, 2
_FLAGS = {"a": re.ASCII, "i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


@dataclass(frozen=True)
class Clause:
    literal: Optional[str] = None  # the message contains it
    hresult: Optional[int] = None  # the HResult equals it (unsigned 32-bit)


Condition = Optional[Tuple[Clause, ...]]  # None: anything may match


def condition(spec: Any) -> Condition:
    """The spec's necessary condition (predicates.py's to_spec tree)."""
    op = spec.get("op") if isinstance(spec, dict) else None
    if op == "message_matches":
        literal = required_literal(spec.get("regex"), spec.get("flags") or "")
        return None if literal is None else (Clause(literal=literal[:MAX_LITERAL]),)
    if op == "hresult" and isinstance(spec.get("code"), int):
        return (Clause(hresult=spec["code"] & 0xFFFFFFFF),)
    children = spec.get("predicates") if op in ("all", "any") else None
    if not isinstance(children, list) or not children:
        return None  # type, stack, fields, inner, not, first/second chance: no condition on the two
    conditions = [condition(child) for child in children]
    if op == "any":
        if any(c is None for c in conditions):
            return None
        clauses = tuple(clause for c in conditions for clause in c or ())
        return clauses if len(clauses) <= MAX_CLAUSES else None
    known = [c for c in conditions if c is not None]
    if not known:
        return None
    singles = [c[0] for c in known if len(c) == 1]
    if len(singles) == len(known):  # all(message, hresult): one clause needing both
        literals = [s.literal for s in singles if s.literal]
        codes = [s.hresult for s in singles if s.hresult is not None]
        return (Clause(max(literals, key=len) if literals else None, codes[0] if codes else None),)
    return min(known, key=len)  # any one child's condition is necessary for all of them


def required_literal(regex: Any, letters: str) -> Optional[str]:
    """The longest run of characters every match of ``regex`` contains; None when there is none."""
    if not isinstance(regex, str):
        return None
    flags = 0
    for letter in letters:
        flags |= _FLAGS.get(letter, 0)
    try:
        parsed = _sre_parse.parse(regex, flags)
    except (re.error, TypeError, ValueError, RecursionError):
        return None
    runs: List[str] = [""]
    _walk(list(parsed), bool(parsed.state.flags & re.IGNORECASE), runs)
    best = max(runs, key=len)
    return best or None


def _walk(items: Sequence[Tuple[Any, Any]], ignore_case: bool, runs: List[str]) -> None:
    """Append the sequence's plain characters to the current run (runs[-1]); anything else ends it. A
    group is a sequence of its own items; a character with a case is no literal under IGNORECASE."""
    for op, value in items:
        if op is _sre_constants.LITERAL:
            char = chr(value)
            if not ignore_case or char.lower() == char == char.upper():
                runs[-1] += char
                continue
        elif op is _sre_constants.SUBPATTERN:
            _group, add_flags, del_flags, inner = value
            case = (ignore_case or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE
            _walk(list(inner), case, runs)
            continue
        runs.append("")


def table(clauses: Sequence[Clause]) -> bytes:
    """The clauses as the stub reads them at PF_TABLE: 16-byte records (kind, HResult, the literal's
    offset in the data page, its length in UTF-16 code units), a zero record, then the literals' text.
    Raises ValueError when they do not fit."""
    if not 0 < len(clauses) <= MAX_CLAUSES:
        raise ValueError(f"{len(clauses)} clauses (1 to {MAX_CLAUSES} fit)")
    text_at = PF_TABLE + 16 * (len(clauses) + 1)
    records, text = b"", b""
    for clause in clauses:
        kind = (KIND_HRESULT if clause.hresult is not None else 0) | (KIND_LITERAL if clause.literal else 0)
        encoded = (clause.literal or "").encode("utf-16-le")
        offset = text_at + len(text)
        records += struct.pack("<IIII", kind, (clause.hresult or 0) & 0xFFFFFFFF, offset, len(encoded) // 2)
        text += encoded
    made = records + bytes(16) + text
    if PF_TABLE + len(made) > PAGE:
        raise ValueError(f"the clauses take {len(made)} bytes; {PAGE - PF_TABLE} fit")
    return made
