"""Pure helpers over cdb's own text (not SOS's): prompts, symbol-loader noise, the
module list, the banner, and the lines the driver sends. No I/O.

cdb's prompt (``0:000> ``, ``1:019> ``, ``0:000:x86> ``, ``?:???> ``) has no newline and
is printed whenever cdb waits for input, so the next output lands on the prompt's line
and prompts pile up (``0:000> 0:000> ...``). Replies are cut out of the stream by the
markers of :mod:`pydbgauto.drivers.framing`; these helpers clean what is between them.

The markers themselves are produced by ``.printf`` with the first ``@`` given as
``%c``, so that the command text, should cdb ever echo it, never contains the marker.

Event banners, ``.lastevent`` and ``.dump`` replies are parsed in ``pydbgauto.sos``,
not here.
"""

from __future__ import annotations

import re
from typing import Optional

from pydbgauto.drivers.framing import MARKER_PREFIX, end_marker, start_marker

__all__ = [
    "PROMPT_RE",
    "clean_reply",
    "debugger_version",
    "detect_runtime",
    "ends_with_prompt",
    "loaded_modules",
    "marker_command",
    "scrub_symbol_noise",
    "strip_prompts",
]

_PROMPT = r"(?:\d+|\?):(?:\d+|\?\?\?)(?::x86|:ARM64|:arm64)?> "
PROMPT_RE = re.compile(_PROMPT)
_LEADING_PROMPTS = re.compile(rf"^(?:{_PROMPT})+", re.MULTILINE)
_ENDS_WITH_PROMPT = re.compile(rf"(?:^|[\r\n]|> ){_PROMPT}$")

# Lines the symbol loader inserts, sometimes in the middle of another line; cutting the
# whole "*** ...\r\n" out joins the interrupted line again.
_SYMBOL_NOISE = re.compile(
    r"\*\*\* (?:ERROR|WARNING): (?:Symbol file could not be found|Unable to verify checksum|"
    r"Unable to verify timestamp|Module load completed but symbols could not be loaded)[^\r\n]*\r?\n"
    r"|\*\*\*\*\*\*\*\*\*\*\*\*\* Symbol (?:Loading|Path) Error Summary \*+[^\r\n]*\r?\n"
)


def ends_with_prompt(text: str) -> bool:
    """True when ``text`` ends with a cdb prompt, i.e. cdb waits for input."""
    return bool(_ENDS_WITH_PROMPT.search(text)) or PROMPT_RE.fullmatch(text) is not None


def strip_prompts(text: str) -> str:
    """Remove the prompts that lead lines (however many piled up), and a last prompt-only line."""
    text = _LEADING_PROMPTS.sub("", text)
    return text


def scrub_symbol_noise(text: str) -> str:
    """Cut symbol-loader warnings out, rejoining the line they interrupted."""
    return _SYMBOL_NOISE.sub("", text)


def clean_reply(body: str) -> str:
    """A reply body as callers want it: no prompts, no symbol noise, ``\\n`` line ends."""
    text = scrub_symbol_noise(body.replace("\r\n", "\n").replace("\r", "\n"))
    text = strip_prompts(text)
    return text.rstrip("\n")


def marker_command(token: str, *, end: bool, status: str = "ok") -> str:
    """The ``.printf`` line that makes cdb print the start or end marker of ``token``.

    The first character of the marker is passed as ``%c`` (0x40, '@') so the line itself
    does not contain the marker text.
    """
    marker = end_marker(token, status) if end else start_marker(token)
    assert marker.startswith("@") and MARKER_PREFIX.startswith("@")
    return f'.printf "%c{marker[1:]}\\n", 0x40'


_LM_LINE = re.compile(r"^\s*[0-9a-fA-F`]{8,17}\s+[0-9a-fA-F`]{8,17}\s+(\S+)", re.MULTILINE)

# Module name in `lm` -> runtime family. Order: the first found wins.
_RUNTIMES = (("coreclr", "coreclr"), ("clr", "clr"), ("mscorwks", "mscorwks"))


def loaded_modules(lm_text: str) -> list[str]:
    """Module names (third column) of cdb's ``lm`` listing, in order."""
    return [m.group(1) for m in _LM_LINE.finditer(lm_text)]


def detect_runtime(lm_text: str) -> Optional[str]:
    """Which CLR the module list shows: ``"coreclr"`` (.NET Core/5+), ``"clr"`` (.NET
    Framework 4.x), ``"mscorwks"`` (.NET Framework 2.0-3.5), or None."""
    names = {n.lower() for n in loaded_modules(lm_text)}
    for module, runtime in _RUNTIMES:
        if module in names:
            return runtime
    return None


_VERSION = re.compile(r"Microsoft \(R\) Windows Debugger Version (\S+) (\S+)")


def debugger_version(banner: str) -> Optional[str]:
    """``10.0.26100.1 AMD64`` from cdb's start-up banner, or None."""
    m = _VERSION.search(banner)
    return f"{m.group(1)} {m.group(2)}" if m else None
