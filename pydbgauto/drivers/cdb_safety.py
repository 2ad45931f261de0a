"""Validate every user string before it reaches cdb. Pure: no I/O.

cdb commands are a small language: ``;`` separates commands, a newline always starts a
new one, ``$$`` starts a comment, ``$<``/``$$<`` run script files, and ``.shell`` runs
operating-system commands. A user string spliced into a command line could run any of
them. So every string that a caller hands the cdb driver is checked here first and
refused with :class:`pydbgauto.UnsafeInputError`:

- dump paths (:func:`check_dump_path`): an absolute path made of a small set of
  characters, always wrapped in double quotes by the caller;
- exception type names (:func:`check_type_name`), for ``!soe`` and ``sxe -c`` strings;
- symbol paths (:func:`check_symbol_path`): only ever passed as the ``-y`` argument of
  cdb's own command line, never typed at the prompt;
- process image names (:func:`check_image_name`), passed as ``-pn``;
- raw commands for ``execute()`` (:func:`check_command`): never a line break or a
  pydbgauto marker; and without ``allow_dangerous`` none of the commands that run
  programs, read scripts, write files, end or detach the target, or let it run.

The rules follow the protocol brief (shared/research/cdb-protocol.md, section 9) and the
Microsoft documentation of the command separator, ``$$`` and ``.echo``.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

from pydbgauto.drivers.framing import MARKER_PREFIX
from pydbgauto.errors import UnsafeInputError

IS_WINDOWS = os.name == "nt"  # cdb runs on Windows; its rules are tested everywhere

__all__ = [
    "DANGEROUS_COMMANDS",
    "check_command",
    "check_dump_path",
    "check_image_name",
    "check_symbol_path",
    "check_type_name",
    "check_type_names",
    "quote_path",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Absolute Windows paths: drive letter (C:\ or C:/) or UNC (\\server\share).
_WIN_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\[A-Za-z0-9_.\-]+\\)")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9 _\-.:\\/]+$")

_TYPE_NAME = re.compile(r"^[A-Za-z_][\w.+`\[\],]*$")
_TYPE_NAME_MAX = 512

_IMAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9 _\-.]*$")

# Symbol paths legitimately hold ';' (element separator) and '*' (srv*cache*url); they
# are passed only as an argv element of cdb's command line, where neither means anything.
_SYMBOL_PATH_CHARS = re.compile(r"^[A-Za-z0-9 _\-.:\\/*;=+~,()#]+$")

# Commands that are refused in execute() unless the caller passes allow_dangerous=True.
# Matched against the first word of every ';'-separated statement (case-insensitively).
DANGEROUS_COMMANDS: frozenset[str] = frozenset(
    {
        # run programs, attach elsewhere, end or leave the target
        ".shell",
        ".create",
        ".createdir",
        ".attach",
        ".kill",
        ".detach",
        ".abandon",
        ".restart",
        ".reboot",
        ".crash",
        "q",
        "qq",
        "qd",
        # read script files
        "$<",
        "$><",
        "$$<",
        "$$><",
        "$$>a<",
        "$>a<",
        # load code, write files
        ".load",
        ".loadby",
        ".unload",
        ".logopen",
        ".logappend",
        ".logclose",
        ".writemem",
        ".dump",
        ".opendump",
        ".dumpcab",
        # change how pydbgauto reads replies, or define text substitutions
        ".prompt_allow",
        ".pcmd",
        ".ocommand",
        ".outmask",
        ".printf",
        ".echo",
        ".block",
        ".foreach",
        ".do",
        ".for",
        ".while",
        ".if",
        ".elsif",
        ".else",
        "as",
        "aS",
        "ad",
        ".cmdtree",
        # event filters (the driver owns them: arm/disarm/set_type_filter)
        "sx",
        "sxe",
        "sxd",
        "sxn",
        "sxi",
        "sxr",
        "sx-",
        # let the target run
        "g",
        "gh",
        "gn",
        "gu",
        "gc",
        "p",
        "pa",
        "pc",
        "pct",
        "ph",
        "pt",
        "t",
        "ta",
        "tb",
        "tc",
        "tct",
        "th",
        "tt",
        "wt",
    }
)

# Anywhere in a command, even inside braces or quotes: these always need allow_dangerous.
_DANGEROUS_ANYWHERE = re.compile(
    r"(?i)(?:(?<![\w!])\.(?:shell|create\w*|attach|kill|writemem|logopen|logappend|load\w*|dump\b|restart|"
    r"detach|abandon)|\$\$|\$>|\$<|\bsx[edinr-]?\s+-c|!(?:\w+\.)?(?:soe|stoponexception)\b.*-create)"
)
_DANGEROUS_LOWER = frozenset(w.lower() for w in DANGEROUS_COMMANDS)
_THREAD_PREFIX = re.compile(r"^~[\d*.#]*\s*(?:e\s+)?")


def _refuse(what: str, value: str, why: str) -> UnsafeInputError:
    return UnsafeInputError(f"refused {what} {value!r}: {why}")


def _no_control(what: str, value: str) -> None:
    if _CONTROL.search(value):
        raise _refuse(what, value, "it contains a line break or another control character")


def check_dump_path(path: str, *, windows: bool = True) -> str:
    """Return ``path`` if it is safe to put, quoted, after ``.dump /ma``; else raise.

    ``windows=True`` (real cdb) needs a drive-letter or UNC path. ``windows=False`` is
    only for the replay test double on POSIX, which takes ``/``-rooted paths.
    """
    if not isinstance(path, str) or not path:
        raise _refuse("dump path", str(path), "it is empty")
    _no_control("dump path", path)
    if not _PATH_CHARS.match(path):
        raise _refuse(
            "dump path",
            path,
            "only letters, digits, space and _ - . : \\ / are allowed (no quotes, ';', '$', '%', ...)",
        )
    if windows:
        if not _WIN_ABSOLUTE.match(path):
            raise _refuse(
                "dump path", path, "it must be absolute (C:\\dir\\file.dmp or \\\\server\\share\\...)"
            )
        colon_rest = path[2:] if path[1:2] == ":" else path
    else:
        if not path.startswith("/"):
            raise _refuse("dump path", path, "it must be absolute")
        colon_rest = path
    if ":" in colon_rest:
        raise _refuse("dump path", path, "':' is only allowed after the drive letter (no alternate streams)")
    parts = re.split(r"[\\/]", path)
    if ".." in parts:
        raise _refuse("dump path", path, "'..' components are not allowed")
    if path.endswith(("\\", "/", " ", ".")):
        raise _refuse("dump path", path, "it must name a file")
    return path


def quote_path(path: str) -> str:
    """Wrap an already checked path in double quotes (cdb has no escape for '"')."""
    if '"' in path:
        raise _refuse("path", path, "it contains a double quote")
    return f'"{path}"'


def check_type_name(name: str) -> str:
    """Return ``name`` if it is a plausible .NET type name, safe inside ``sxe -c "..."``."""
    if not isinstance(name, str) or not name:
        raise _refuse("type name", str(name), "it is empty")
    _no_control("type name", name)
    if len(name) > _TYPE_NAME_MAX:
        raise _refuse("type name", name[:40] + "...", f"it is longer than {_TYPE_NAME_MAX} characters")
    if not _TYPE_NAME.match(name):
        raise _refuse(
            "type name", name, "a type name is letters, digits, '_', '.', '+', '`', '[', ']' and ',' only"
        )
    return name


def check_type_names(names: Iterable[str]) -> list[str]:
    return [check_type_name(n) for n in names]


def check_symbol_path(path: str) -> str:
    """Return ``path`` if it is safe as cdb's ``-y`` argument."""
    if not isinstance(path, str) or not path.strip():
        raise _refuse("symbol path", str(path), "it is empty")
    _no_control("symbol path", path)
    if "$$" in path or not _SYMBOL_PATH_CHARS.match(path):
        raise _refuse(
            "symbol path",
            path,
            "allowed are letters, digits, space and _ - . : \\ / * ; = + ~ , ( ) # (no quotes, '$', '%')",
        )
    return path


def check_image_name(name: str) -> str:
    """Return ``name`` if it is safe as cdb's ``-pn`` argument (an image name such as app.exe)."""
    if not isinstance(name, str) or not name:
        raise _refuse("process name", str(name), "it is empty")
    _no_control("process name", name)
    if not _IMAGE_NAME.match(name) or len(name) > 260:
        raise _refuse("process name", name, "an image name is letters, digits, space, '_', '-' and '.' only")
    return name


def _statements(command: str) -> list[str]:
    # Conservative: every ';' splits, even inside quotes, so nothing hides behind one.
    return [s.strip() for s in command.split(";") if s.strip()]


def _first_word(statement: str) -> str:
    m = re.match(r"(\$\$>a<|\$>a<|\$\$><|\$\$<|\$><|\$<|[.!]?[A-Za-z_][\w.]*-?|\S+)", statement)
    return m.group(1) if m else statement


def check_command(command: str, *, allow_dangerous: bool = False) -> str:
    """Return ``command`` if it may be sent to cdb as one line; else raise UnsafeInputError.

    Always refused: line breaks and control characters (they would start another command
    behind the framing), and pydbgauto's own marker text (it could forge a reply's end).
    Refused unless ``allow_dangerous``: any statement starting with one of
    :data:`DANGEROUS_COMMANDS`, and ``.shell``, ``.create``, ``$$``, script runners, file
    writers and ``sx* -c`` anywhere in the text.
    """
    if not isinstance(command, str) or not command.strip():
        raise _refuse("command", str(command), "it is empty")
    _no_control("command", command)
    if MARKER_PREFIX.lower() in command.lower() or "@pda" in command.lower():
        raise _refuse("command", command, "it contains pydbgauto's reply marker text")
    if allow_dangerous:
        return command
    m = _DANGEROUS_ANYWHERE.search(command)
    if m:
        raise _refuse(
            "command",
            command,
            f"{m.group(0).strip()!r} can run programs, scripts or write files; "
            "pass allow_dangerous=True if you mean it",
        )
    for statement in _statements(command):
        if statement.startswith("~"):
            statement = _THREAD_PREFIX.sub("", statement, count=1)
            if not statement:
                continue
        word = _first_word(statement)
        if word.lower() in _DANGEROUS_LOWER:
            raise _refuse(
                "command",
                command,
                f"{word!r} is refused in execute() (it ends, detaches or resumes the target, runs "
                "programs or scripts, writes files, or changes how replies are read); "
                "pass allow_dangerous=True if you mean it",
            )
    return command
