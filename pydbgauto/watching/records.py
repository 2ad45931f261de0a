"""Capture records on disk: a JSON file created new beside its dump, mode 0600, never through a symlink."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from pydbgauto.errors import DumpError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_new_json(path: str, data: Mapping[str, Any]) -> None:
    """A capture record: created new (never overwritten, never through a symlink), mode 0600 whatever
    the umask (it holds exception messages). Nothing half-written stays: a failed write removes it."""
    text = json.dumps(data, indent=1) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o600)
    except FileExistsError:
        what = "a symlink" if os.path.islink(path) else "a file"
        raise DumpError(
            f"{what} is already at {path}: pydbgauto never writes a capture record through a symlink "
            "or over a file; remove it, or use a dump folder only you can write to"
        ) from None
    except OSError as e:
        raise DumpError(f"cannot create the capture record {path}: {e.strerror}") from e
    try:
        os.fchmod(fd, 0o600)
        write_all(fd, text.encode("utf-8"))
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        _unlink_quietly(path)
        raise DumpError(f"cannot write the capture record {path}: {e.strerror}; it was removed") from e
    os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
