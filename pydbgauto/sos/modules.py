"""``dumpdomain`` and ``dumpmodule -mt``: the loaded modules, and the MethodTables of a module's loaded
types by name (pure parsers). The agent uses them to learn, when a filter is set, the MethodTables of
the types a predicate names, so that a first throw of one needs no SOS command at its stop."""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

from pydbgauto.sos.common import parse_hex

# dumpdomain (SOS 10): "  Module" on a line, then "  00007f6d65a34000    /path/System.Private.CoreLib.dll"
# (older SOS: "Module Name" / "Module:  <address>  <path>" on one line)
_MODULE = re.compile(
    r"^\s*Module(?::| Name)?[ \t]*\n?[ \t]*([0-9A-Fa-f`]{8,17})[ \t]+(\S.*?)[ \t]*$", re.MULTILINE
)
# dumpmodule -mt:  "00007fe1dfa9a690 0x0200011e System.InvalidOperationException"
_TYPE_ROW = re.compile(r"^([0-9A-Fa-f`]{8,17})\s+0x[0-9A-Fa-f]{8}\s+(\S.*?)\s*$", re.MULTILINE)


def parse_dumpdomain_modules(text: str) -> List[Tuple[int, str]]:
    """(Module address, its file) of every module ``dumpdomain`` lists, in its order, each once."""
    seen: Dict[int, str] = {}
    for m in _MODULE.finditer(text):
        seen.setdefault(parse_hex(m.group(1)), m.group(2))
    return list(seen.items())


def parse_dumpmodule_types(text: str) -> Dict[str, int]:
    """Type name -> MethodTable of each loaded type ``dumpmodule -mt`` lists (defined or referenced)."""
    found: Dict[str, int] = {}
    for m in _TYPE_ROW.finditer(text):
        found.setdefault(m.group(2), parse_hex(m.group(1)))
    return found


def modules_to_search(names: List[str], modules: List[Tuple[int, str]]) -> List[Tuple[int, str]]:
    """The modules that may define the types ``names``: CoreLib for ``System.*`` names, and a module whose
    assembly name is a dotted prefix of a name (``MyApp.Payments`` for ``MyApp.Payments.CardException``).
    Others are not searched (a type found nowhere costs one dumpmt at its first stop instead)."""
    chosen = []
    for address, path in modules:
        assembly = re.sub(r"\.(dll|exe)$", "", path.replace("\\", "/").rsplit("/", 1)[-1], flags=re.I)
        corelib = assembly == "System.Private.CoreLib" and any(n.startswith("System.") for n in names)
        if corelib or any(n.startswith(assembly + ".") for n in names):
            chosen.append((address, path))
    return chosen
