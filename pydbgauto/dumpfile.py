"""Dump files on disk: the rules every dump pydbgauto writes follows, whoever writes its bytes.

A dump holds the target's secrets, so: the folder is checked before any dump is attempted; the bytes go
to a temporary name in the same folder (mode 0600); the file is fsync'ed and moved to its final name
without ever replacing a file that is there; the folder is fsync'ed; nothing partial stays.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import Callable, Optional

import attr

from pydbgauto.errors import ConfigurationError, DumpError
from pydbgauto.models import DumpRecord, StopEvent

Verifier = Callable[[DumpRecord, Optional[StopEvent]], DumpRecord]


def temporary_name(final: str) -> str:
    """A hidden name beside ``final`` for the dump while it is written."""
    return os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.{secrets.token_hex(4)}.partial")


def check_dump_folder(folder: str) -> None:
    """Refuse a dump folder that does not exist or cannot be written, before any dump is attempted."""
    if not os.path.isdir(folder):
        raise ConfigurationError(
            f"the dump folder {folder} does not exist: create it first (mkdir -p {folder})"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the dump folder {folder} is not writable by this user: choose another folder"
        )


def rename_no_overwrite(temp: str, final: str) -> None:
    """Move ``temp`` to ``final`` atomically, failing rather than replacing an existing file."""
    try:
        os.link(temp, final)  # fails with FileExistsError if final appeared meanwhile
    except FileExistsError:
        raise DumpError(f"{final} appeared while the dump was written; the dump stays at {temp}") from None
    except OSError:
        # Filesystems without hard links: rename, after a last look (a small race, documented).
        if os.path.lexists(final):
            raise DumpError(f"{final} already exists; the dump stays at {temp}") from None
        os.rename(temp, final)
        fsync_dir(os.path.dirname(final))
        return
    os.unlink(temp)
    fsync_dir(os.path.dirname(final))


def fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path: str) -> str:
    """The sha256 of a file, read in 1 MiB blocks (dumps are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_written(
    record: DumpRecord, expect: Optional[StopEvent], verifier: Verifier, *, verify: bool, checksum: bool
) -> DumpRecord:
    """The sha256 and the independent reader's check (``verifier``) of a dump already written and named.
    They read the file, not the target: a watch does them once the target runs again, on another thread.
    A signal meanwhile removes the dump (all or nothing)."""
    try:
        if checksum:
            record = attr.evolve(record, sha256=file_sha256(record.path))
        if verify:
            record = verifier(record, expect)
    except KeyboardInterrupt:
        os.unlink(record.path)
        raise
    return record
