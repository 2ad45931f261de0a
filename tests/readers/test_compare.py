"""The one comparison of what a dump should hold with what a reader read (pydbgauto.readers.compare).

Pure, runs anywhere. What was "read" is parsed from text recorded by a real dotnet-dump run on a real dump
(tests/transcripts/readers/dotnet-dump-verify-net10-crash.*); the expectation is the stop it was written
at, then variations of it that a broken comparison would let through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

import attr
import pytest

from pydbgauto.models import CaptureRecord, DecisionRecord, DumpRecord, ManagedException, StopEvent
from pydbgauto.models import ManagedStack, ThreadTable
from pydbgauto.readers.compare import Expected, Seen, compare, failed_record, verified_record
from pydbgauto.sos import parse_clrstack, parse_pe, parse_threads
from pydbgauto.sos.reader_output import split_dotnet_dump

RUN = Path(__file__).resolve().parents[1] / "transcripts" / "readers" / "dotnet-dump-verify-net10-crash"

Read = Tuple[Dict[str, Any], ManagedException, ThreadTable, ManagedStack]


@pytest.fixture(scope="module")
def read() -> Read:
    meta = json.loads(RUN.with_suffix(".json").read_text())
    text = Path(f"{RUN}.stdout.txt").read_text() + Path(f"{RUN}.stderr.txt").read_text()
    pe_text, threads_text, stack_text = split_dotnet_dump(text)
    exc = parse_pe(pe_text)
    assert exc is not None
    return meta, exc, parse_threads(threads_text), parse_clrstack(stack_text)


def _event(read: Read, **changes: Any) -> StopEvent:
    meta, exc, _, _ = read
    event = StopEvent(
        kind="second-chance", thread_id=meta["thread_id"], exception_address=exc.address, exception=exc
    )
    return attr.evolve(event, **changes)


def _seen(read: Read, **changes: Any) -> Seen:
    _, exc, table, stack = read
    seen = Seen(
        threads=table,
        threads_read=True,
        exception_read=True,
        on_thread=Seen.of(exc),
        stack_thread_id=stack.os_thread_id,
        stack_read=True,
    )
    return attr.evolve(seen, **changes)


def test_the_dump_of_the_stop_agrees(read):
    assert compare(Expected.from_event(_event(read)), _seen(read)) == ([], [])


def test_another_exception_type_is_a_problem_naming_both(read):
    _, exc, _, _ = read
    other = attr.evolve(exc, type="System.TimeoutException")
    problems, _ = compare(Expected.from_event(_event(read, exception=other)), _seen(read))
    assert len(problems) == 1
    assert "System.TimeoutException" in problems[0] and "System.InvalidOperationException" in problems[0]


def test_another_address_found_by_address_is_a_note_not_a_problem(read):
    _, exc, _, _ = read
    earlier = attr.evolve(exc, address=exc.address + 0x40)
    expected = Expected.from_event(_event(read, exception_address=earlier.address, exception=earlier))
    assert compare(expected, _seen(read))[0] != []  # the thread holds another object, none at the address
    problems, notes = compare(expected, _seen(read, at_address=earlier))
    assert problems == [] and len(notes) == 1 and "now holds" in notes[0]


def test_a_thread_with_no_exception_needs_the_object_at_its_address(read):
    _, exc, _, _ = read
    expected = Expected.from_event(_event(read))
    assert "no exception object at" in compare(expected, _seen(read, on_thread=None))[0][0]
    problems, notes = compare(expected, _seen(read, on_thread=None, at_address=exc))
    tid = f"{expected.thread_id:#x}"
    assert problems == [] and notes == [
        f"thread {tid} lists no exception; the expected {expected.want} was found by its address"
    ]
    wrong = attr.evolve(exc, type="System.Exception")
    assert "is a System.Exception" in compare(expected, _seen(read, on_thread=None, at_address=wrong))[0][0]


def test_another_thread_has_no_stack(read):
    problems, _ = compare(Expected.from_event(_event(read, thread_id=0x1234)), _seen(read))
    assert problems and all("0x1234" in p for p in problems)


def test_no_thread_list_is_a_problem(read):
    problems, _ = compare(Expected.from_event(_event(read)), _seen(read, threads=None))
    assert problems == ["the reader printed no thread list"]


def test_a_break_in_needs_a_managed_thread_only(read):
    _, _, table, _ = read
    expected = Expected.from_event(StopEvent(kind="break", thread_id=0x99))
    assert expected.at_break and expected.thread_id is None
    assert compare(expected, Seen(threads=table, threads_read=True)) == ([], [])
    empty = attr.evolve(table, threads=())
    assert compare(expected, Seen(threads=empty, threads_read=True))[0] == [
        "the reader's thread list has no managed thread"
    ]
    assert Expected.from_event(None) == expected


def test_an_exception_read_without_pe_is_looked_for_in_the_thread_list(read):
    _, exc, table, _ = read
    truncated = attr.evolve(exc, truncated="trace too deep")
    expected = Expected.from_event(_event(read, exception=truncated, exception_address=None))
    assert expected.listed_only and expected.exception_address == exc.address  # from the object
    seen = _seen(read, exception_read=False, on_thread=None)
    assert compare(expected, seen) == ([], [])
    record = verified_record(DumpRecord(path="/x.core", size=1, seconds=0.1), "r", expected, seen, 1.0)
    assert record.verified and record.seen_exception_type == exc.type  # the thread list showed it
    other = Expected.from_event(_event(read, exception=attr.evolve(truncated, type="System.Exception")))
    assert "does not show System.Exception" in compare(other, seen)[0][0]


def test_a_stack_too_deep_is_looked_for_in_the_thread_list(read):
    _, _, _, stack = read
    deep = attr.evolve(stack, truncated="50,000 frames")
    expected = Expected.from_event(_event(read, stack=deep))
    assert expected.stack_too_deep
    assert compare(expected, _seen(read, stack_thread_id=None, stack_read=False)) == ([], [])
    gone = Expected.from_event(_event(read, stack=deep, thread_id=0x1234))
    assert "not in the dump's managed thread list" in compare(gone, _seen(read, stack_read=False))[0][0]


def test_the_last_event_thread_and_the_readers_own_problems(read):
    expected = Expected.from_event(_event(read))
    seen = Seen(event_read=True, event_thread_id=0x3B8C, problems=("SOS was not loaded",))
    problems, _ = compare(expected, seen)
    assert problems == [
        "SOS was not loaded",
        f"the dump's last event is on thread 0x3b8c, expected {expected.thread_id:#x}",
    ]
    assert compare(expected, Seen(event_read=True))[0] == ["the dump's last event names no thread"]


def test_a_capture_record_is_expected_with_its_own_words(read):
    _, exc, _, _ = read
    event = _event(read, exception=None)
    capture = CaptureRecord(
        event=event, decision=DecisionRecord(action="dump", reason="matched"), exception=exc
    )
    expected = Expected.from_capture(capture)
    assert (expected.exception_type, expected.source) == (exc.type, "the capture record")
    problems, _ = compare(expected, _seen(read, on_thread=("System.Exception", exc.address)))
    assert problems and "the capture record says" in problems[0]


def test_the_verdict_on_the_record(read):
    record = DumpRecord(path="/x.core", size=1, seconds=0.1)
    expected = Expected.from_event(_event(read))
    good = verified_record(record, "r", expected, _seen(read), 2.0, seen_thread_id=7)
    assert (good.verified, good.reader, good.verify_seconds, good.verify_error, good.seen_thread_id) == (
        True,
        "r",
        2.0,
        None,
        7,
    )
    bad = verified_record(record, "r", expected, _seen(read, threads=None), 2.0)
    assert not bad.verified and bad.verify_error == "the reader printed no thread list"
    failed = failed_record(record, "r", RuntimeError("could not open"), 1.0)
    assert not failed.verified and failed.verify_error == "could not open"
