"""verify_dump, the verifier's contract, on a real dump: dotnet-dump reopens a core pydbgauto wrote at the
sample app's unhandled exception. It says yes to the stop the dump was written at, no (with why) to any
other, and never raises for a dump it cannot read. No mocks: real lldb, SOS and dotnet-dump."""

from __future__ import annotations

import os
from typing import Tuple

import attr
import pytest

import pydbgauto
from pydbgauto.models import DumpRecord, StopEvent
from pydbgauto.verify import READER, verify_dump
from tests import real_parts

pytestmark = pytest.mark.lldb

APP = real_parts.APP_NET10


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Tuple[DumpRecord, StopEvent]:
    real_parts.require("verify tests", APP)
    from pydbgauto.watching import watch

    folder = tmp_path_factory.mktemp("verify")
    result = watch(
        launch=[APP, "crash"], when=pydbgauto.second_chance(), dump_dir=str(folder), timeout=120, verify=False
    )
    assert len(result.captures) == 1, str(result)
    capture = result.captures[0]
    assert capture.dump is not None and not capture.dump.verified  # not verified yet: verify=False
    return capture.dump, capture.event


def test_the_dump_shows_its_stop(crash):
    record, event = crash
    checked = verify_dump(record, event)
    assert checked.verified, checked.verify_error
    assert checked.reader == READER == "dotnet-dump analyze"
    assert checked.verify_error is None and checked.verify_seconds is not None and checked.verify_seconds > 0
    assert checked.seen_exception_type == "System.InvalidOperationException"
    assert checked.seen_thread_id == event.thread_id
    assert checked.seen_stack is not None and checked.seen_stack.os_thread_id == event.thread_id
    # the reader hosts SOS's managed half: its stack has source lines
    assert any(f.source_file and f.source_file.endswith("Program.cs") for f in checked.seen_stack.frames)
    assert (checked.path, checked.size, checked.sha256) == (record.path, record.size, record.sha256)


def test_another_stop_is_not_verified_and_says_why(crash):
    record, event = crash
    assert event.exception is not None
    other = attr.evolve(event, exception=attr.evolve(event.exception, type="System.TimeoutException"))
    checked = verify_dump(record, other)
    assert not checked.verified
    assert checked.verify_error is not None
    assert "System.TimeoutException" in checked.verify_error
    assert "System.InvalidOperationException" in checked.verify_error
    elsewhere = verify_dump(record, attr.evolve(event, thread_id=0x7FFF0000))
    assert not elsewhere.verified and "0x7fff0000" in (elsewhere.verify_error or "")


def test_a_dump_at_no_exception_needs_managed_threads(crash):
    record, _ = crash
    checked = verify_dump(record, None)
    assert checked.verified, checked.verify_error
    assert checked.seen_stack is None  # no thread to read the stack of


def test_a_file_the_reader_cannot_open_is_not_verified_and_does_not_raise(crash, tmp_path):
    _, event = crash
    junk = tmp_path / "junk.core"
    junk.write_bytes(os.urandom(4096))
    checked = verify_dump(DumpRecord(path=str(junk), size=4096, seconds=0.0), event)
    assert not checked.verified and checked.reader == READER
    assert checked.verify_error is not None and "could not open" in checked.verify_error
