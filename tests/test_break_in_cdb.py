"""Break in and dump now through the cdb driver, against the replay TEST DOUBLE (issue 13, item 2).

The transcripts (tests/transcripts/cdb-replay/overlay-break-in.txt, overlay-dump-break.txt) are written
from documentation, not recorded: these tests show that the Session, the snapshot and the cdb driver fit
together (Ctrl+Break while ``g`` runs, a "break" stop, ``!clrstack -all``, ``.dump /ma``, ``cdb -z``
checking the thread lists); they make no claim about real cdb.exe.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from pydbgauto import cli
from pydbgauto.snapshot import dump_now, snapshot
from tests.test_session_cdb import ATTACH_PID, DOUBLE, TRANSCRIPTS, Replay, _assert_left_with_qd, replay

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the replay double is a POSIX script")

__all__ = ["replay"]  # the fixture, imported for pytest

BREAK_THREAD = 0x2F44  # the thread cdb injects to break in (overlay-break-in.txt)


def _dump_scenario(replay: Replay) -> None:
    replay.monkeypatch.setenv(
        "CDB_REPLAY_DUMP_SCENARIO",
        os.pathsep.join(str(TRANSCRIPTS / t) for t in ("dump-net8.txt", "overlay-dump-break.txt")),
    )


def test_break_in_while_waiting_stops_the_target_and_both_calls_get_the_event(replay: Replay) -> None:
    _dump_scenario(replay)
    with replay.attach("attach-net8.txt", "overlay-break-in.txt") as s:
        s.break_on_clr_exceptions()
        got: Dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: got.setdefault("event", s.wait_for_event(timeout=20)))
        waiter.start()
        deadline = time.monotonic() + 10
        while "g" not in replay.commands() and time.monotonic() < deadline:
            time.sleep(0.02)
        started = time.monotonic()
        event = s.break_in(timeout=10)
        waiter.join(10)
        assert time.monotonic() - started < 5  # the break, not the 20 s limit, ended the wait
        assert event.kind == "break" and event.thread_id == BREAK_THREAD
        assert got["event"] is event and s.last_event is event
        assert event.exception is None and "Break instruction" in event.description
        assert "!pe" not in replay.commands()  # a break-in has no exception of its own
        assert "break-in" in str(event)
    _assert_left_with_qd(replay)


def test_snapshot_after_a_break_in_records_stacks_exceptions_and_a_verified_dump(
    replay: Replay, tmp_path: Path
) -> None:
    _dump_scenario(replay)
    with replay.attach("attach-net8.txt", "overlay-break-in.txt") as s:
        waiter = threading.Thread(target=lambda: s.wait_for_event(timeout=20))
        waiter.start()
        while "g" not in replay.commands():
            time.sleep(0.02)
        s.break_in(timeout=10)
        waiter.join(10)
        record = snapshot(s, str(tmp_path), process="ThrowingApp")
    assert record.dump is not None and record.dump.verified, record.dump and record.dump.verify_error
    assert record.dump.reader == "cdb -z"
    assert os.path.basename(record.dump.path).startswith(f"ThrowingApp_{ATTACH_PID}_1_hang_")
    assert [st.os_thread_id for st in record.stacks] == [0x2D00, 0x3B8C]
    assert record.threads is not None and [t.os_id for t in record.threads.threads] == [0x2D00, 0x3B8C]
    # the exception thread 2d00 still holds (its !threads row), read with !pe
    assert [(e.thread_id, e.exception and e.exception.type) for e in record.exceptions] == [
        (0x2D00, "System.InvalidOperationException")
    ]
    assert "!clrstack -all" in replay.commands() and "!pe 0x1d2a4c0f2e8" in replay.commands()
    assert any(c.startswith(".dump /ma ") for c in replay.commands())
    assert replay.reopened()[-4:] == ["~", ".loadby sos coreclr", "!threads", "q"]
    saved = json.loads(Path(record.record_path or "").read_text())
    assert saved["event"]["kind"] == "break" and len(saved["stacks"]) == 2
    assert os.stat(record.record_path or "").st_mode & 0o777 == 0o600


def test_break_in_on_a_stopped_target_sends_nothing_to_run_it(replay: Replay) -> None:
    with replay.attach("attach-net8.txt") as s:
        before = list(replay.commands())
        event = s.break_in()
        assert event.kind == "break" and event.sequence == 1
        assert "g" not in replay.commands()[len(before) :]


def test_dump_command_with_cdb_leaves_the_target_running(
    replay: Replay, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _dump_scenario(replay)
    replay.scenario("attach-net8.txt")
    replay.monkeypatch.setenv("CDB_PATH", str(DOUBLE))
    code = cli.main(
        ["dump", "--pid", str(ATTACH_PID), "--debugger", "cdb", "--dump-dir", str(tmp_path), "--json"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    record = json.loads(out.out)
    assert record["dump"]["verified"] and record["event"]["kind"] == "break"
    assert "g" not in replay.sent()  # attached, stopped, dumped: never resumed under the debugger
    _assert_left_with_qd(replay)  # qd: detached, the target runs on


def test_dump_now_refuses_bad_input_before_any_debugger(replay: Replay, tmp_path: Path) -> None:
    from pydbgauto.errors import ConfigurationError

    for kwargs in ({}, {"pid": 1, "name": "x"}, {"pid": 0}, {"pid": True}, {"pid": 5, "timeout": -1}):
        with pytest.raises(ConfigurationError):
            dump_now(**kwargs, dump_dir=str(tmp_path), debugger="cdb")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="does not exist"):
        dump_now(ATTACH_PID, dump_dir=str(tmp_path / "missing"), debugger="cdb")
    assert replay.log() == []  # no cdb was started
