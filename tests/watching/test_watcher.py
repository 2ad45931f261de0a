"""The Watcher (a watch on a background thread) on a recorded lldb session: the ReplayDriver TEST DOUBLE
(tests/doubles/replay_driver.py) answers with real recorded SOS text; no debugger runs. The real thing:
tests/test_pytest_plugin.py (lldb-marked tests)."""

from __future__ import annotations

import os

import pytest

import pydbgauto as pda
from pydbgauto.errors import PydbgautoError
from pydbgauto.models import CaptureRecord, DecisionRecord, ManagedException, StopEvent
from pydbgauto.watching import Watcher
from pydbgauto.watching.watcher import CaptureList, capture_line
from tests.doubles.replay_driver import ReplayDriver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORDING = os.path.join(ROOT, "tests", "transcripts", "sessions", "first-chance-net8.json")
IOE = "System.InvalidOperationException"
# The recording's pid is one of the machine it was recorded on: the watches here run to the recorded exit
# (max_dumps above the matches), so the Watcher never waits on, nor kills, whatever has that pid here.
REPLAY = ReplayDriver.factory(RECORDING)


def test_a_launched_watch_runs_to_the_exit_on_its_thread(tmp_path) -> None:
    ioe = pda.exception_type(IOE)
    with Watcher(["ThrowingApp"], when=ioe, max_dumps=5, dump_dir=str(tmp_path), debugger=REPLAY) as w:
        assert w.target_pid is not None  # armed before the block runs
    assert not w.running and w.result is not None and w.result.ended == "exit"
    assert [c.exception.type for c in w.captures if c.exception] == [IOE]
    assert w.captures == list(w.result.captures) and isinstance(w.captures, CaptureList)
    assert [e.exception_type for e in w.matched] == [IOE]
    assert [e for e, _ in w.decisions] == [e for e, _ in w.result.decisions]
    assert w.exit_status == w.result.exit_status


@pytest.mark.parametrize("taken", ["launch", "name", "on_event", "stop"])
def test_options_the_watcher_sets_itself_are_refused(taken) -> None:
    with pytest.raises(PydbgautoError, match=f"sets {taken}= itself"):
        Watcher(["/bin/app"], **{taken: None})


def test_a_watcher_starts_once(tmp_path) -> None:
    w = Watcher(["ThrowingApp"], max_dumps=None, dump_dir=str(tmp_path), debugger=REPLAY)
    with w:
        pass
    with pytest.raises(PydbgautoError, match="started already"):
        w.start()


def test_capture_line_says_the_dump_or_why_there_is_none() -> None:
    exc = ManagedException(address=0x10, type=IOE, message="queue timeout")
    event = StopEvent(kind="first-chance", sequence=1, exception=exc)
    failed = CaptureRecord(
        event=event, decision=DecisionRecord("dump", "matched", n=2), exception=exc, dump_error="disk full"
    )
    assert capture_line(failed) == f"capture 2: {IOE}: queue timeout -> no dump (disk full)"
    unread = CaptureRecord(
        event=StopEvent(kind="first-chance", sequence=2), decision=DecisionRecord("dump", "limit")
    )
    assert capture_line(unread) == "capture -: unknown exception -> no dump (limit)"
    assert repr(CaptureList([failed, unread])) == f"[{capture_line(failed)}, {capture_line(unread)}]"
