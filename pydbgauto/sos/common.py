"""Shared bits of the SOS parsers: addresses, noise lines, SOS failure texts. Pure: no I/O.

Every parser first runs :func:`clean_lines` over its input, so the quirks of the two hosts
(cdb's backticked addresses and CRLF, symbol-loader warnings spliced into the middle of a
line, SOS's own dynamic-assembly warning spliced into a ``clrstack`` row, prompt echoes,
``...`` elisions) are handled once, here.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from pydbgauto.errors import SosError

# One pointer-sized hex number as SOS or cdb prints it: 8 or 16 digits, cdb may split the
# 16 with a backtick (00007ffd`1a2b3c40); some commands print a 0x prefix.
HEX = r"(?:0x)?[0-9A-Fa-f]+(?:`[0-9A-Fa-f]+)?"
# A full-width pointer column (8 or 16 digits): short hex words in text never match it.
PTR = r"[0-9A-Fa-f]{8}(?:`?[0-9A-Fa-f]{8})?"

# Symbol-loader messages that cdb splices into the output wherever it is when a module's
# symbols load, even mid-line; each ends with its own newline (research/cdb-protocol.md 4).
_SPLICED_NOISE = re.compile(
    r"\*\*\* (?:WARNING|ERROR): (?:Unable to verify checksum for|Symbol file could not be found)"
    r"[^\n]*(?:\n|$)"
)
# SOS's symbol reader warns when a frame's module is dynamic (SymbolReader::LoadSymbols, an ExtWarn
# ending in its own newline). In clrstack it does so in the middle of the row, after the SP and IP
# columns and before the call site, which then stands alone on the next line:
#   00007F20D6D2C070 00007F61955B079D SOS Warning: Loading symbols for dynamic assemblies is not yet
#   supported
#   DynamicClass.lambda_method2(System.Runtime.CompilerServices.Closure, System.Object, ...HttpContext)
# (the warning's own line is cut in two here only to fit)
# (every ASP.NET Core minimal API or MVC stack has such a frame: its request delegates are compiled
# expression trees). Cutting the warning out makes the row whole again. The warning says nothing about
# the target, so it is not kept (the models have no place for warnings; ``raw`` still holds it).
_SOS_SPLICED_WARNING = re.compile(
    r"SOS Warning: Loading symbols for dynamic assemblies is not yet supported[^\n]*(?:\n|$)"
)
# Whole lines that are never part of a command's own output.
_NOISE_LINE = re.compile(
    r"^(?:"
    r"\d+:\d+(?::\w+)?> .*"  # cdb prompt echo: 0:000> !pe, 0:000:x86> ..., 1:019> ...
    r"|\d+:\d+(?::\w+)?>\s*"  # a bare cdb prompt
    r"|\(lldb\) ?.*"  # lldb prompt echo
    r"|\s*(?:\.\.\.|\u2026)\s*"  # an elision line
    r"|ERROR: Module load completed but symbols could not be loaded for .*"
    r"|\*\*\* (?:WARNING|ERROR): .*"
    r"|WARNING: Frame IP not in any known module\..*"
    r")$"
)


def parse_hex(text: str) -> int:
    """``00007ffd`1a2b3c40`` / ``0x1F`` / ``80131509`` -> int. Raises ValueError on anything else."""
    t = text.strip().replace("`", "")
    if t[:2] in ("0x", "0X"):
        t = t[2:]
    if not t:
        raise ValueError(f"not a hex number: {text!r}")
    return int(t, 16)


def normalise(text: str) -> str:
    """CRLF/CR -> LF, and cut out the symbol-loader texts cdb and SOS spliced into lines."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "*** " in text:
        text = _SPLICED_NOISE.sub("", text)
    if "SOS Warning: " in text:
        text = _SOS_SPLICED_WARNING.sub("", text)
    return text


def clean_lines(text: str) -> List[str]:
    """The lines of ``text`` that can carry command output (see the module docstring)."""
    lines = normalise(text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another one
    return [line for line in lines if not (_maybe_noise(line) and _NOISE_LINE.match(line))]


def _maybe_noise(line: str) -> bool:
    """Cheap test before the regex: most lines are rows that can be told apart by their start."""
    head = line[:16]
    return (
        ">" in head
        or line.startswith(("(lldb)", "*** ", "ERROR: ", "WARNING: "))
        or (("." in head or "\u2026" in head) and line.strip() in ("...", "\u2026"))
    )


# SOS failures that mean the command could not run at all: no object from it would be true.
# Table of (pattern, what to do about it); order does not matter, the first match wins.
_FATAL: Tuple[Tuple["re.Pattern[str]", str], ...] = (
    (
        re.compile(r"Failed to load data access (?:module|DLL), 0x[0-9A-Fa-f]+"),
        "check that the DAC (mscordaccore) matches the target runtime; try setclrpath",
    ),
    (
        re.compile(r"[0-9A-Fa-f]{8} Exception in .*debugger extension"),
        "the SOS extension crashed; retry the command once",
    ),
    (re.compile(r"SOS does not support the current target architecture"), "use an SOS for this target"),
    (re.compile(r"Failed to find runtime module"), "is the .NET runtime loaded in the target yet?"),
    (re.compile(r"Failed to request ThreadStore"), "the runtime's thread store is not readable yet"),
    (re.compile(r"Unable to find module '?(?:sos|coreclr|clr)"), "load SOS first"),
)


def fatal_sos_failure(lines: List[str]) -> Optional[str]:
    """The first line that says SOS could not run at all, with advice; None if there is none."""
    for line in lines:
        if "xception in" in line or "ail" in line or "SOS" in line or "Unable" in line:
            for pattern, advice in _FATAL:
                if pattern.search(line):
                    return f"{line.strip()} ({advice})"
    return None


def raise_if_fatal(lines: List[str], command: str) -> None:
    """Raise SosError when SOS reported it could not run ``command`` at all."""
    failure = fatal_sos_failure(lines)
    if failure is not None:
        raise SosError(f"SOS {command} failed: {failure}")


SOURCE_SUFFIX = re.compile(r"\s*\[(?P<file>[^\[\]]+?) @ (?P<line>\d+)\s*\]\s*$")


def split_source(text: str) -> Tuple[str, Optional[str], Optional[int]]:
    """``Foo.Bar() [C:\\src\\x.cs @ 12]`` -> ("Foo.Bar()", "C:\\src\\x.cs", 12)."""
    if text.endswith("]") and " @ " in text:
        m = SOURCE_SUFFIX.search(text)
        if m:
            return text[: m.start()].rstrip(), m.group("file"), int(m.group("line"))
    return text, None, None
