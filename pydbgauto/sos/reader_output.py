"""Cut what a dump reader printed into one reply per command. Pure: text in, text out.

The readers (``pydbgauto.readers``) run several SOS commands in one go and get their replies back to
back; these functions find where each reply starts. The SOS parsers then read each piece.

- ``dotnet-dump analyze -c A -c B ...`` prints the replies with no separator: a report is found by its
  first line (``Exception object:`` for ``pe``, ``ThreadCount:`` for ``clrthreads``, ``OS Thread Id:``
  for ``clrstack``), and a ``threads`` listing (one line per thread, ``*`` on the current one) run before
  a command marks where that command's reply starts and which thread was current.
- ``lldb --batch -o A -o B ...`` echoes each command as ``(lldb) A`` before its reply.
- ``cdb -z`` replies are framed by the cdb console; only the checks of their content live here.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

__all__ = [
    "SOS_LOAD_FAILURES",
    "cdb_lists_threads",
    "dotnet_dump_overview",
    "dotnet_dump_threads_blocks",
    "dotnet_dump_warnings",
    "lldb_loaded_sos",
    "lldb_replies",
    "split_dotnet_dump",
    "warning_lines",
]

# What cdb prints when loading SOS (.load / .loadby) failed.
SOS_LOAD_FAILURES = re.compile(
    r"(?i)(unable to find module|the call to loadlibrary\([^)]*\) failed|couldn't load|"
    r"failed to load|no export|not a valid extension|sos does not support)"
)
# A line of cdb's ``~`` listing: ``.  0  Id: 1a2c.2d00 Suspend: 0 ...``
_CDB_THREAD_LINE = re.compile(r"^[ .#]\s*\d+\s+Id:\s*[0-9a-fA-F]+\.[0-9a-fA-F]+", re.MULTILINE)
# A line of dotnet-dump's ``threads`` listing: ``*1 0x2D00 (11520)``
_THREADS_LISTING = re.compile(r"^\s*(\*?)\s*\d+\s+0x[0-9A-Fa-f]+\s+\((\d+)\)\s*$")
_LLDB_ECHO = re.compile(r"^\(lldb\) (.*)$")
_STACK_HEAD = re.compile(r"^OS Thread Id:", re.MULTILINE)


def split_dotnet_dump(text: str) -> Tuple[str, str, str]:
    """The output of ``pe``, ``clrthreads`` and (optionally) ``clrstack`` run in that order:
    (pe text, clrthreads text, clrstack text), each "" when its report is not there."""
    threads_at = text.find("ThreadCount:")
    stack_match = _STACK_HEAD.search(text)
    stack_at = stack_match.start() if stack_match else -1
    pe_start = text.find("Exception object:")
    if pe_start < 0:
        pe_start = 0
    ends = [p for p in (threads_at, stack_at) if p > pe_start]
    pe_text = text[pe_start : min(ends)] if ends else text[pe_start:]
    threads_text = (
        text[threads_at : stack_at if stack_at > threads_at else len(text)] if threads_at >= 0 else ""
    )
    stack_text = text[stack_at:] if stack_at >= 0 else ""
    return pe_text, threads_text, stack_text


def dotnet_dump_overview(text: str) -> Optional[Tuple[str, str]]:
    """The output of ``clrthreads`` then ``clrstack -all``: (clrthreads text, clrstack -all text);
    None when there is no thread list (the reader could not read the dump)."""
    threads_at = text.find("ThreadCount:")
    if threads_at < 0:
        return None
    m = _STACK_HEAD.search(text, threads_at)
    stacks_at = m.start() if m else len(text)
    return text[threads_at:stacks_at], text[stacks_at:]


def dotnet_dump_threads_blocks(text: str) -> List[Tuple[Optional[int], str]]:
    """Cut the output at each ``threads`` listing: (the current OS thread id, the reply after it).
    The current thread is None when the listing marks none."""
    blocks: List[Tuple[Optional[int], List[str]]] = []
    in_listing = False
    for line in text.splitlines():
        m = _THREADS_LISTING.match(line)
        if m:
            if not in_listing:
                blocks.append((None, []))
                in_listing = True
            if m.group(1):
                blocks[-1] = (int(m.group(2)), blocks[-1][1])
            continue
        in_listing = False
        if blocks:
            blocks[-1][1].append(line)
    return [(current, "\n".join(lines) + "\n") for current, lines in blocks]


def warning_lines(
    text: str, prefixes: Sequence[str] = ("WARNING:",), indented: bool = True
) -> Tuple[str, ...]:
    """The stripped lines that start with one of ``prefixes`` (``indented``: also after leading blanks)."""
    return tuple(
        line.strip()
        for line in text.splitlines()
        if (line.strip() if indented else line).startswith(tuple(prefixes))
    )


def dotnet_dump_warnings(text: str) -> List[str]:
    """dotnet-dump's own warnings (``WARNING: ...`` at the start of a line), without the prefix."""
    return [line[len("WARNING:") :].strip() for line in text.splitlines() if line.startswith("WARNING:")]


def lldb_loaded_sos(text: str) -> bool:
    """Whether ``lldb --batch --core ... -o 'plugin load <sos>'`` opened the core and loaded SOS."""
    return "was loaded" in text and "error: Unable to load" not in text


def lldb_replies(stdout: str, count: int) -> List[str]:
    """The replies to our ``count`` commands of an ``lldb --batch --core <dump> -o 'plugin load ...' -o ...``
    run, cut at the ``(lldb) <command>`` echoes; "" for commands lldb did not get to. The first two echoes
    are lldb's ``target create`` and the plugin load."""
    replies: List[List[str]] = []
    current: Optional[List[str]] = None
    for line in stdout.splitlines():
        if _LLDB_ECHO.match(line):
            current = []
            replies.append(current)
        elif current is not None:
            current.append(line)
    ours = ["\n".join(lines) + "\n" for lines in replies[2:]]
    return ours + [""] * (count - len(ours))


def cdb_lists_threads(text: str) -> bool:
    """Whether a reply to cdb's ``~`` lists at least one thread."""
    return bool(_CDB_THREAD_LINE.search(text))
