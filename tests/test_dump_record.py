"""DumpRecord.pause_seconds: in the record when a watch measured it, absent otherwise (old records stay)."""

from __future__ import annotations

from pydbgauto.models import DumpRecord


def test_pause_is_left_out_until_measured_and_round_trips_when_set():
    plain = DumpRecord(path="/d/x.core", size=10, seconds=0.1)
    assert "pause_seconds" not in plain.to_dict()  # golden JSON of records without it stays the same
    assert DumpRecord.from_dict(plain.to_dict()) == plain
    paused = DumpRecord(path="/d/x.core", size=10, seconds=0.1, pause_seconds=0.25)
    assert paused.to_dict()["pause_seconds"] == 0.25
    assert DumpRecord.from_dict(paused.to_dict()) == paused
