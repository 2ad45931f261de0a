"""The decision log: one JSON line per stop (what was seen, whether it matched, what was decided and why),
appended to a private file (mode 0600, never through a symlink) one line per write as the watch goes."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any, Dict, Optional

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import DecisionRecord, StopEvent
from pydbgauto.watching.records import NOFOLLOW, write_all

LOG_NAME = "pydbgauto-decisions.jsonl"


def decision_line(
    event: StopEvent,
    decision: DecisionRecord,
    matched: bool,
    pid: Optional[int],
    predicate_error: Optional[str] = None,
) -> Dict[str, Any]:
    """The log line of one stop (``pid``: the watched process's, when the event does not carry one)."""
    line: Dict[str, Any] = {
        "sequence": event.sequence,
        "pid": event.pid if event.pid is not None else pid,
        "time": event.time,
        "kind": event.kind,
        "thread_id": event.thread_id,
        "exception_type": event.exception_type,
        "exception_address": event.exception_address,
        "message": event.exception.message if event.exception else None,
        "matched": matched,
        "action": decision.action,
        "reason": decision.reason,
        "detail": decision.detail,
        "filtered_in_debugger": event.filtered,
    }
    if predicate_error:
        line["predicate_error"] = predicate_error
    if event.crash is not None:  # second chance: stack-overflow, fail-fast (its message), ...
        line["crash"] = {"kind": event.crash.kind, "message": event.crash.message}
    return line


def open_private_log(path: str) -> int:
    """Open (or create) the decision log for appending: never through a symlink, only a regular file of
    ours with one link, mode 0600 whatever the umask. Returns the file descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(path):
            raise ConfigurationError(
                f"{path} is a symlink: pydbgauto never writes its decision log through a symlink "
                "(someone may have planted it); remove it, or use a folder only you can write to"
            ) from None
        raise ConfigurationError(f"cannot open the decision log {path}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif info.st_nlink != 1:
            problem = f"has {info.st_nlink} hard links (it may be another file under a planted name)"
        elif info.st_uid != os.geteuid():
            problem = f"belongs to user id {info.st_uid}, not to you"
        if problem:
            raise ConfigurationError(
                f"the decision log {path} {problem}: remove it, or give another log_path / --dump-dir"
            )
        os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_line(fd: int, line: str) -> None:
    """One decision log line in one write (O_APPEND): a crash loses at most the line being written; the
    loops of several processes sharing one log never interleave their lines."""
    if fd >= 0:
        write_all(fd, line.encode("utf-8"))
