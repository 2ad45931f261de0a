"""What kind of death a second-chance stop (the runtime's SIGABRT) is: stack overflow, fail-fast, or an
unhandled exception, with the runtime's own report when pydbgauto can read the target's stderr.

The runtime writes its report before it aborts, so at the SIGABRT stop it is already there:

    Stack overflow.                         Process terminated. <message>       (.NET 8)
    Repeat 130937 times:                    Process terminated.                 (.NET 9+)
    --------------------------------        <message>
       at Ns.Type.Ping(Int32)                  at System.Environment.FailFast(System.String)
    ...                                     Unhandled exception. System.X: <message>

Launched targets write stderr to a file pydbgauto owns; an attached target's stderr is read only when it
is a regular file (``/proc/<pid>/fd/2``). Without a report the exception ``pe`` shows decides:
StackOverflowException is a stack overflow, ExecutionEngineException at an abort a fail-fast.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from pydbgauto.models import CrashInfo, ManagedException

REPORT_TAIL = 64 * 1024  # bytes of the target's stderr read at most (its end: the report is last)
REPORT_KEEP = 4000  # characters of the report kept in the event

_STARTS = re.compile(r"^(Stack overflow\.|Process terminated\.|Unhandled exception\. )", re.MULTILINE)


def parse_report(text: str) -> Optional[CrashInfo]:
    """The last crash report in a stderr text, or None. Pure."""
    starts = list(_STARTS.finditer(text))
    if not starts:
        return None
    start = starts[-1]
    report = text[start.start() :].rstrip()
    lines = report.splitlines()
    head = start.group(1)
    if head.startswith("Stack overflow"):
        return CrashInfo(kind="stack-overflow", message=None, report=_keep(report))
    if head.startswith("Process terminated"):
        first = lines[0][len("Process terminated.") :].strip()
        message_lines = [first] if first else []
        if not first:  # .NET 9+: the message on the lines after, up to the stack
            for line in lines[1:]:
                if line.startswith("   at ") or not line.strip():
                    break
                message_lines.append(line)
        return CrashInfo(kind="fail-fast", message="\n".join(message_lines) or None, report=_keep(report))
    rest = lines[0][len("Unhandled exception. ") :]
    type_name, _, message = rest.partition(": ")
    return CrashInfo(
        kind="unhandled-exception",
        message=message or None,
        exception_type=type_name or None,
        report=_keep(report),
    )


def _keep(report: str) -> str:
    return report if len(report) <= REPORT_KEEP else report[:REPORT_KEEP] + "\n... (cut)"


def classify(exception: Optional[ManagedException], report: Optional[CrashInfo]) -> CrashInfo:
    """The crash, from the runtime's report if there is one, else from the thread's exception."""
    if report is not None:
        return report
    kind = "abort"
    if exception is not None:
        if exception.type == "System.StackOverflowException":
            kind = "stack-overflow"
        elif exception.type == "System.ExecutionEngineException":
            kind = "fail-fast"
        else:
            kind = "unhandled-exception"
    return CrashInfo(
        kind=kind,
        message=exception.message if exception is not None and kind == "unhandled-exception" else None,
        exception_type=exception.type if exception is not None else None,
    )


def read_report(stderr_path: Optional[str], pid: Optional[int]) -> Optional[CrashInfo]:
    """The runtime's report from the target's stderr: ``stderr_path`` (a launched target), else its fd 2
    when that is a regular file. None when there is none or it cannot be read."""
    path = stderr_path
    if path is None and pid is not None:
        try:
            candidate = os.path.realpath(f"/proc/{pid}/fd/2")
        except OSError:
            return None
        path = candidate if os.path.isfile(candidate) else None
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - REPORT_TAIL))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return parse_report(text)
