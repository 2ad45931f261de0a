"""``clrstack [-a|-p|-l] [-f] [-r] [-all]`` text -> :class:`ManagedStack`. Pure.

Layout (strike.cpp ClrStackImpl): ``OS Thread Id: 0x<tid> (<dbg#>)`` (no index under
``-all``), a ``Child SP IP Call Site`` header, then rows ``<sp> <ip> <call site>``. The IP
column is blank for runtime frames under ``-f``. Call sites are a method (``-f``: with
``module!`` and `` + <decimal>``), a runtime marker ``[XxxFrame: <addr>] <method>``, or (``-f``)
a native symbol ``module!func + 60 at file:line``. ``-a/-p/-l`` add indented
``PARAMETERS:``/``LOCALS:`` blocks and ``-r`` register lines, which are skipped.

SOS may print a warning between a row's IP and its call site (``SOS Warning: Loading symbols for
dynamic assemblies is not yet supported``, before every dynamic-method frame of an ASP.NET Core
stack); the call site then stands alone on the next line. ``clean_lines`` cuts the known warning out,
which makes the row whole; any other ``SOS Warning:`` found there is skipped the same way here, and
the line after it taken as the call site. Warnings are never frames (nor kept: ``raw`` holds them).
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from pydbgauto.errors import ParseError, SosError
from pydbgauto.models import ManagedStack, StackFrame
from pydbgauto.sos.common import PTR, clean_lines, fatal_sos_failure, parse_hex, split_source

_THREAD = re.compile(r"^\s*OS Thread Id:\s*0x([0-9A-Fa-f]+)(?:\s*\((\d+)\))?")
# sp, then ip (blank under -f for runtime frames), then the call site (may be empty).
_ROW = re.compile(r"^\s*(" + PTR + r")(?:[ \t]+(" + PTR + r"))?(?:[ \t]+(.*?))?[ \t]*$")
_MARKER = re.compile(r"^\[(\w+): (" + PTR + r"|[0-9A-Fa-f]+)\]\s*(.*)$")
_DISPLACEMENT = re.compile(r"\s\+\s(\d+)$")
_NATIVE_SOURCE = re.compile(r"\s+at\s+(.+):(\d+)$")
_VAR_BLOCK = re.compile(r"^\s*(?:PARAMETERS|LOCALS):")
_SOS_WARNING = "SOS Warning:"
# Texts by which SOS says it could not (fully) walk this thread's stack. Order matters: the
# first match names the error; later lines of the same message are folded into it.
_ERRORS: Tuple[str, ...] = (
    "Unable to walk the managed stack",
    "Failed to start stack walk",
    "Failed to start stalk walk",  # older builds' spelling
    "Failed to get native stack frames",
    "GetFrameContext failed",
    "Stack Walk failed",
    "<failed>",
    "<interrupted>",
    "The current thread is unmanaged",
    "Failed to load data access",
    "Failed to request ThreadStore",
)
_ERROR_CONTINUATION = (
    "managed thread. You can run",
    "the process",
    "Native stack walking is not supported",
    "Stack walk will terminate",
    "You can run the debugger command",
    "If that succeeds, the SOS command",
    "Verify that 1)",
    "2)",
    "3)",
    "4)",
    "5)",
)


def parse_clrstack(text: str) -> ManagedStack:
    """Parse a single-thread ``clrstack`` reply. ParseError if it holds several threads (use
    :func:`parse_clrstack_all`); SosError only when the SOS extension itself crashed."""
    stacks = _parse(text)
    if len(stacks) != 1:
        raise ParseError(f"clrstack: {len(stacks)} thread sections; use parse_clrstack_all for clrstack -all")
    return stacks[0]


def parse_clrstack_all(text: str) -> Tuple[ManagedStack, ...]:
    """Parse ``clrstack -all``: one ManagedStack per ``OS Thread Id`` section."""
    return tuple(_parse(text))


def _parse(text: str) -> List[ManagedStack]:
    lines = clean_lines(text)
    fatal = fatal_sos_failure(lines)
    if fatal is not None and "Exception in" in fatal:
        raise SosError(f"SOS clrstack crashed: {fatal}")
    sections = _sections(lines)
    if not sections:
        # No thread header at all: either a failure text (a stack we cannot have) or not clrstack.
        error = _errors(lines)
        if error is None:
            raise ParseError(f"not a clrstack reply (no 'OS Thread Id' line): {text[:200]!r}")
        return [ManagedStack(os_thread_id=None, error=error, raw=text)]
    single = len(sections) == 1
    return [_section(head, body, text if single else "\n".join([head] + body)) for head, body in sections]


def _sections(lines: List[str]) -> List[Tuple[str, List[str]]]:
    sections: List[Tuple[str, List[str]]] = []
    pre: List[str] = []
    for line in lines:
        if "OS Thread Id:" in line and _THREAD.match(line):
            sections.append((line, []))
        elif sections:
            sections[-1][1].append(line)
        else:
            pre.append(line)
    if sections and _errors(pre):
        # A failure printed before the first header belongs to it (e.g. a DAC warning).
        head, body = sections[0]
        sections[0] = (head, pre + body)
    return sections


def _errors(lines: List[str]) -> Optional[str]:
    found: List[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(_ERRORS) or (found and stripped.startswith(_ERROR_CONTINUATION)):
            found.append(stripped)
        elif stripped.endswith(" failed") and stripped.lower().startswith("clrstack"):
            found.append(stripped)  # "ClrStack -f  failed", printed by the host after a failure
    return " ".join(found) if found else None


def _section(head: str, body: List[str], raw: str) -> ManagedStack:
    m = _THREAD.match(head)
    assert m is not None  # _sections only starts a section on a matching line
    frames: List[StackFrame] = []
    in_vars = False
    i = 0
    while i < len(body):
        line = body[i]
        i += 1
        row = _ROW.match(line)
        if row is None:
            if ("PARAMETERS:" in line or "LOCALS:" in line) and _VAR_BLOCK.match(line):
                in_vars = True
            continue  # the header, a register line, an error line, a blank, a lone SOS warning
        if in_vars and line.startswith("        "):
            continue  # a parameter/local value that happens to start with a hex-looking name
        in_vars = False
        site = row.group(3) or ""
        if site.startswith(_SOS_WARNING):
            # A warning clean_lines does not know, spliced between the IP and the call site: the
            # call site is the next line, unless that is a row of its own (then SOS printed none).
            following = body[i] if i < len(body) else ""
            site = ""
            if following.strip() and _ROW.match(following) is None:
                site = following.strip()
                i += 1
        frames.append(_frame(row.group(1), row.group(2), site))
    return ManagedStack(
        os_thread_id=int(m.group(1), 16),
        debugger_thread_index=int(m.group(2)) if m.group(2) is not None else None,
        frames=tuple(frames),
        error=_errors(body),
        raw=raw,
    )


def _frame(sp: str, ip: Optional[str], site: str) -> StackFrame:
    ip_value = parse_hex(ip) if ip is not None else None
    marker = _MARKER.match(site)
    if marker:
        frame_method = marker.group(3).strip() or None
        frame_module: Optional[str] = None
        if frame_method is not None and "!" in frame_method:
            frame_module, frame_method = frame_method.split("!", 1)
        return StackFrame(
            sp=parse_hex(sp),
            ip=ip_value,
            call_site=site.strip(),
            kind="runtime",
            frame_type=marker.group(1),
            method=frame_method,
            module=frame_module,
        )
    call_site, source_file, line = split_source(site)
    kind = "managed"
    if source_file is None:
        native_src = _NATIVE_SOURCE.search(call_site)
        if native_src and "!" in call_site:
            call_site, source_file, line = (
                call_site[: native_src.start()],
                native_src.group(1),
                int(native_src.group(2)),
            )
            kind = "native"
    method: Optional[str] = call_site
    offset: Optional[int] = None
    disp = _DISPLACEMENT.search(call_site)
    if disp:
        offset = int(disp.group(1))
        method = call_site[: disp.start()]
    module: Optional[str] = None
    if method and "!" in method:
        module, method = method.split("!", 1)
        # -f prints managed frames as "<file>.dll!" (assembly file name) and native ones with the
        # debugger's module name (libcoreclr.so, coreclr, KERNELBASE): only .dll/.exe are managed.
        if not module.lower().endswith((".dll", ".exe")):
            kind = "native"
    if not call_site:
        kind, method = "native", None  # -f: a native frame the debugger has no symbol for
    return StackFrame(
        sp=parse_hex(sp),
        ip=ip_value,
        call_site=call_site,
        kind=kind,
        method=method,
        source_file=source_file,
        line=line,
        module=module,
        offset=offset,
    )
