"""Reopening a dump with a second ``cdb -z``: the cdb console (prompts, markers, resync) over a dump
instead of a live target. The readers layer (pydbgauto/readers/cdb.py) compares what it shows."""

from __future__ import annotations

import os
import tempfile
from typing import Mapping, Optional, Sequence

from pydbgauto.drivers.cdb_console import CdbConsole
from pydbgauto.drivers.cdb_locate import find_cdb
from pydbgauto.drivers.cdb_safety import IS_WINDOWS, check_dump_path
from pydbgauto.drivers.cdb_transport import make_transport
from pydbgauto.errors import DebuggerError, DumpVerificationError, NoSuchProcessError, TargetExitedError


def verify_dump_with_cdb(
    path: str,
    *,
    cdb_path: Optional[str] = None,
    timeout: Optional[float] = 120.0,
    env: Optional[Mapping[str, str]] = None,
    transport: str = "pipes",
) -> str:
    """Open ``path`` with ``cdb -z`` and return its ``.lastevent`` text; DumpVerificationError
    if cdb cannot open it."""
    return read_dump_with_cdb(
        path, [".lastevent"], cdb_path=cdb_path, timeout=timeout, env=env, transport=transport
    )[0]


def read_dump_with_cdb(
    path: str,
    commands: Sequence[str],
    *,
    cdb_path: Optional[str] = None,
    timeout: Optional[float] = 120.0,
    env: Optional[Mapping[str, str]] = None,
    transport: str = "pipes",
) -> list[str]:
    """Open ``path`` with a new ``cdb -z`` and run ``commands[0]`` (which must print a
    ``Last event``) and then the others; return their replies. These commands are pydbgauto's
    own (SOS loading included), never user text. DumpVerificationError if cdb cannot open the
    dump or shows no last event."""
    check_dump_path(path, windows=IS_WINDOWS)
    if not os.path.isfile(path):
        raise DumpVerificationError(f"{path} does not exist")
    environ = dict(os.environ if env is None else env)
    cdb = find_cdb(cdb_path, env=environ)
    fd, init_file = tempfile.mkstemp(prefix="pydbgauto-", suffix=".cdbinit")
    os.close(fd)
    console = CdbConsole(make_transport(transport))
    replies: list[str] = []
    try:
        argv = [cdb, "-noshell", "-cf", init_file, "-z", path]
        try:
            console.start(argv, environ, None, timeout)
            for command in commands:
                replies.append(console.run([command], timeout, what=command))
        except (DebuggerError, TargetExitedError, NoSuchProcessError) as e:
            raise DumpVerificationError(f"cdb -z could not open {path}: {e}") from e
        if not replies or "Last event" not in replies[0]:
            raise DumpVerificationError(
                f"cdb -z opened {path} but shows no last event: {(replies or [''])[0].strip()[-300:]!r}"
            )
        return replies
    finally:
        if not console.ended:
            try:
                console.send_raw("q")  # a dump, not a live target: q is safe here
            except DebuggerError:
                pass
            if console.transport.wait(10) is None:
                console.kill()
        try:
            os.unlink(init_file)
        except OSError:
            pass
