"""When a type name a user gave names the type SOS printed. Pure; the agent imports it inside lldb.

SOS prints a generic instantiation with its arguments, assembly-qualified
(``MyApp.Result`1[[System.Int32, System.Private.CoreLib]]``), so the name a user writes for the generic
type itself (``MyApp.Result`1``, as C#'s ``typeof(Result<>).FullName`` gives it) names every
instantiation. Anything else must be the whole name: ``MyApp.Result`` (no arity) is another type, and a
nested type is ``Outer+Inner`` as .NET spells it, not C#'s ``Outer.Inner``.
"""

from __future__ import annotations

import re
from typing import Iterable

# A generic type definition's name ends in its arity: `1, `2, ...
_GENERIC_DEFINITION = re.compile(r"`[1-9][0-9]*\Z")


def names_type(wanted: str, printed: str) -> bool:
    """``wanted`` (a user's name) names the type SOS printed as ``printed``."""
    if printed == wanted:
        return True
    return (
        _GENERIC_DEFINITION.search(wanted) is not None
        and printed.startswith(wanted)
        and printed[len(wanted) : len(wanted) + 1] == "["
    )


def names_any(wanted: str, printed: Iterable[str]) -> bool:
    """``wanted`` names one of the types in ``printed`` (e.g. a type and its base types)."""
    return any(names_type(wanted, name) for name in printed)
