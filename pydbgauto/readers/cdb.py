"""``cdb -z <dump>`` (Windows) as an independent dump reader: the cdb driver's ``verify_dump``, and
``analyze``'s reader on Windows.

A second cdb.exe opens the dump (``pydbgauto.drivers.cdb_reopen.read_dump_with_cdb``: the cdb console frames
each reply), SOS is loaded as in the session, and pydbgauto's parsers read the replies. Not run on these
Linux machines: the cdb replay TEST DOUBLE plays it (tests/test_session_cdb.py); where cdb is absent it
raises DebuggerNotFoundError like every reader.
"""

from __future__ import annotations

import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from pydbgauto.errors import DumpVerificationError, ParseError, SosError
from pydbgauto.models import DumpRecord, StopEvent
from pydbgauto.readers.base import Exceptions, ListedThreads, Reader
from pydbgauto.readers.compare import Expected, Seen, failed_record, verified_record
from pydbgauto.sos import parse_pe, parse_threads
from pydbgauto.sos.events import parse_events
from pydbgauto.sos.reader_output import SOS_LOAD_FAILURES, cdb_lists_threads

__all__ = ["READER", "CdbReader", "verify_dump_with_cdb_z"]

READER = "cdb -z"
# Run first in every reopened dump: the last event (proof cdb opened it), then quiet, plain replies.
_SETUP = [".lastevent", ".prompt_allow -dis -ea -reg -src -sym", "!sym quiet", ".outmask- 0x244"]


def _read(
    path: str,
    commands: Sequence[str],
    *,
    cdb_path: Optional[str],
    timeout: Optional[float],
    env: Optional[Mapping[str, str]],
    transport: str,
) -> List[str]:
    from pydbgauto.drivers.cdb_reopen import read_dump_with_cdb

    return read_dump_with_cdb(
        path, list(commands), cdb_path=cdb_path, timeout=timeout, env=env, transport=transport
    )


def verify_dump_with_cdb_z(
    record: DumpRecord,
    expect: Optional[StopEvent],
    *,
    sos_command: Optional[str],
    cdb_path: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    transport: str = "pipes",
    timeout: Optional[float] = 300.0,
) -> DumpRecord:
    """Reopen ``record``'s dump with ``cdb -z`` and compare it with ``expect``: the last event on
    ``expect``'s thread, and ``!pe`` (SOS loaded with ``sos_command``, as in the session) showing its
    exception at its address. At a break-in: ``~`` lists threads and ``!threads`` a managed one.
    Returns ``record`` with ``verified`` and what was seen; never raises for a mismatch."""
    started = time.monotonic()
    # No stop to compare with: the dump must only open and show a last event.
    expected = Expected() if expect is None else Expected.from_event(expect)
    commands = list(_SETUP)
    if expected.at_break:
        commands.append("~")
        if sos_command:
            commands += [sos_command, "!threads"]
    elif expected.exception_type is not None and sos_command:
        commands.append(sos_command)
        address = expected.exception_address
        commands.append(f"!pe 0x{address:x}" if address else "!pe")
    try:
        replies = _read(
            record.path, commands, cdb_path=cdb_path, timeout=timeout, env=env, transport=transport
        )
    except DumpVerificationError as e:
        return failed_record(record, READER, e, time.monotonic() - started)
    seen = (
        _break_seen(replies, sos_command) if expected.at_break else _stop_seen(expected, replies, sos_command)
    )
    facts: Dict[str, object] = {}
    if not expected.at_break:
        facts["seen_thread_id"] = seen.event_thread_id
        facts["seen_exception_type"] = (
            seen.at_address.type if seen.at_address else (seen.on_thread[0] if seen.on_thread else None)
        )
    return verified_record(record, READER, expected, seen, time.monotonic() - started, **facts)


def _stop_seen(expected: Expected, replies: List[str], sos_command: Optional[str]) -> Seen:
    events = parse_events(replies[0])
    event_thread = events[-1].tid if events else None
    problems: List[str] = []
    exception_read, on_thread, at_address = False, None, None
    if expected.exception_type is not None:
        if not sos_command:
            problems.append("SOS was not loaded in this session, so the dump's exception was not read")
        elif SOS_LOAD_FAILURES.search(replies[-2]):
            problems.append(f"{sos_command} failed in the dump: {replies[-2].strip()[-200:]!r}")
        else:
            try:
                seen = parse_pe(replies[-1])
                exception_read = True
            except (ParseError, SosError) as e:
                seen = None
                problems.append(f"!pe on the dump: {e}")
            if expected.exception_address:
                at_address = seen
            else:
                on_thread = Seen.of(seen)
    return Seen(
        event_thread_id=event_thread,
        event_read=True,
        exception_read=exception_read,
        on_thread=on_thread,
        at_address=at_address,
        problems=tuple(problems),
    )


def _break_seen(replies: List[str], sos_command: Optional[str]) -> Seen:
    """A dump taken at a break-in (no exception of its own)."""
    listing = replies[len(_SETUP)]
    problems: List[str] = []
    if not cdb_lists_threads(listing):
        problems.append(f"~ lists no thread in the dump: {listing.strip()[-200:]!r}")
    if not sos_command:
        problems.append("SOS was not loaded in this session, so the dump's managed threads were not read")
        return Seen(problems=tuple(problems))
    try:
        table = parse_threads(replies[-1])
    except (ParseError, SosError) as e:
        problems.append(f"!threads on the dump: {e}")
        return Seen(problems=tuple(problems))
    return Seen(threads=table, threads_read=True, problems=tuple(problems))


class CdbReader(Reader):
    """``analyze``'s cdb reader: ``!threads`` and ``!clrstack -all``, then ``!pe -nested`` on each thread."""

    name = READER

    def __init__(self) -> None:
        from pydbgauto.drivers.cdb_commands import sos_load_commands
        from pydbgauto.drivers.cdb_locate import find_cdb, find_coreclr_sos

        self.cdb = find_cdb()
        self.load = sos_load_commands("coreclr", find_coreclr_sos())

    def _run_cdb(
        self, path: str, commands: Sequence[str], deadline: Optional[float]
    ) -> Tuple[List[str], str]:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        script = _SETUP + self.load + list(commands)
        replies = _read(path, script, cdb_path=self.cdb, timeout=left, env=None, transport="pipes")
        ours = replies[len(_SETUP) + len(self.load) :]
        return ours, "\n".join(replies)

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        (threads, stacks), text = self._run_cdb(path, ["!threads", "!clrstack -all"], deadline)
        return threads, stacks, text

    def exceptions(
        self, path: str, listed: ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> Exceptions:
        commands: List[str] = []
        for t in listed:
            commands += [f"~~[{t.os_id:x}]s", "!pe -nested"]
        if address:
            commands.append(f"!pe -nested {address:x}")
        replies, text = self._run_cdb(path, commands, deadline)
        per_thread = {t.os_id: replies[2 * i + 1] for i, t in enumerate(listed) if replies[2 * i + 1].strip()}
        return per_thread, (replies[-1] if address and replies[-1].strip() else None), text
