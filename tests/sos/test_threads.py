"""parse_threads: table of (row text, expected fields), counters, failures."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import pytest

from pydbgauto import ParseError, SosError, parse_threads

HEAD = (
    "ThreadCount:      4\n"
    "UnstartedThread:  0\n"
    "BackgroundThread: 2\n"
    "PendingThread:    0\n"
    "DeadThread:       1\n"
    "Hosted Runtime:   no\n" + " " * 108 + "Lock\n"
    " DBG   ID     OSID ThreadOBJ           State GC Mode     GC Alloc Context                  Domain"
    "           Count Apt Exception\n"
)
ALLOC = "0000000000000000:0000000000000000 0000020c1c5d9cc0"

ROWS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "main thread with exception": (
        f"   0    1     4d20 0000020C1C5E3A80    2a020 Preemptive  {ALLOC} -00001 MTA "
        "System.InvalidOperationException 0000020c1e0ef6a8",
        dict(dbg_id=0, managed_id=1, os_id=0x4D20, thread_obj=0x20C1C5E3A80, state=0x2A020)
        | dict(gc_mode="Preemptive", apartment="MTA", special=None)
        | dict(
            exception_type="System.InvalidOperationException", exception_address=0x20C1E0EF6A8, nested=False
        ),
    ),
    "finalizer, trailing space": (
        f"   6    2     4488 0000020C1C60F410    2b220 Preemptive  {ALLOC} 0 Ukn (Finalizer) ",
        dict(dbg_id=6, special="Finalizer", exception_type=None, apartment="Ukn"),
    ),
    "dead thread XXXX": (
        f"XXXX    3        0 0000020C1C612AB0  1039820 Preemptive  {ALLOC} 0 Ukn (Threadpool Worker) ",
        dict(dbg_id=None, os_id=0, special="Threadpool Worker"),
    ),
    "several specials, nested exceptions, generic type": (
        f"  11    5 a21277 00007FC999007C00  1020220 Cooperative {ALLOC} 0 Ukn (Finalizer) (GC) "
        "My.Err`1[[System.String, System.Private.CoreLib]] 00007fc99a000010 (nested exceptions)",
        dict(special="Finalizer, GC", gc_mode="Cooperative", nested=True)
        | dict(
            exception_type="My.Err`1[[System.String, System.Private.CoreLib]]",
            exception_address=0x7FC99A000010,
        ),
    ),
    "framework 2.0 type (addr), 32-bit, cdb": (
        "   0    1  250 0019b068      a020 Disabled 02349668:02349fe8 0015def0     0 STA "
        "System.Exception (01e41a2c)",
        dict(dbg_id=0, os_id=0x250, thread_obj=0x19B068, gc_mode="Disabled", apartment="STA")
        | dict(exception_type="System.Exception", exception_address=0x1E41A2C),
    ),
    "invalid object": (
        f"   0    1     4d20 0000020C1C5E3A80    2a020 Preemptive  {ALLOC} 0 MTA "
        "<Invalid Object> (0000020c1e0ef6a8)",
        dict(exception_type="<Invalid Object>", exception_address=0x20C1E0EF6A8),
    ),
}


@pytest.mark.parametrize("row,expected", list(ROWS.values()), ids=list(ROWS))
def test_rows(row: str, expected: Dict[str, Any]) -> None:
    table = parse_threads(HEAD + row + "\n")
    assert len(table.threads) == 1
    for key, value in expected.items():
        assert getattr(table.threads[0], key) == value, key


def test_counters() -> None:
    table = parse_threads("0:000> !threads\r\n" + HEAD.replace("\n", "\r\n"))
    assert (table.thread_count, table.unstarted, table.background, table.pending, table.dead) == (
        4,
        0,
        2,
        0,
        1,
    )
    assert table.hosted_runtime == "no"
    assert table.threads == ()


def test_single_spaced_counters() -> None:
    table = parse_threads(
        "ThreadCount: 2\nUnstartedThread: 0\nBackgroundThread: 1\nPendingThread: 0\nDeadThread: 0\n"
    )
    assert table.thread_count == 2 and table.background == 1


def test_hosted_runtime_fiber_column() -> None:
    text = HEAD.replace("Hosted Runtime:   no", "Hosted Runtime:   yes (Task)") + (
        f"   0    1     4d20 0000020C1C5E3A80    2a020 Preemptive  {ALLOC} 0 MTA 00000000 "
        "System.Exception 0000020c1e0ef6a8\n"
    )
    thread = parse_threads(text).threads[0]
    assert (thread.exception_type, thread.exception_address) == ("System.Exception", 0x20C1E0EF6A8)


@pytest.mark.parametrize(
    "text", ["Failed to request ThreadStore\n", "Failed to load data access module, 0x80004005\n"]
)
def test_sos_failures(text: str) -> None:
    with pytest.raises(SosError):
        parse_threads(text)


@pytest.mark.parametrize("text", ["", "ID OSID ThreadOBJ\n", "random words\n"])
def test_not_threads(text: str) -> None:
    with pytest.raises(ParseError):
        parse_threads(text)
