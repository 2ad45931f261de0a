"""The decision log: the line of a stop (pure), and the private file it goes to (a planted symlink, a hard
link or a FIFO refused)."""

from __future__ import annotations

import json
import os
import time

import pytest

from pydbgauto.errors import ConfigurationError
from pydbgauto.models import CrashInfo, DecisionRecord, ManagedException, StopEvent
from pydbgauto.watching.decision_log import decision_line, open_private_log, write_line

IOE = "System.InvalidOperationException"


def test_a_stop_line_says_what_was_seen_and_decided() -> None:
    exception = ManagedException(address=0x7F00, type=IOE, message="queue timeout")
    event = StopEvent(
        kind="first-chance",
        sequence=3,
        time=1700000000.5,
        thread_id=0x1A2B,
        exception_address=0x7F00,
        exception=exception,
    )
    decision = DecisionRecord(action="skip", reason="cooldown", detail="3 s left")
    line = decision_line(event, decision, True, pid=42)
    assert line == {
        "sequence": 3,
        "pid": 42,  # the event carries none: the watched process's
        "time": 1700000000.5,
        "kind": "first-chance",
        "thread_id": 0x1A2B,
        "exception_type": IOE,
        "exception_address": 0x7F00,
        "message": "queue timeout",
        "matched": True,
        "action": "skip",
        "reason": "cooldown",
        "detail": "3 s left",
        "filtered_in_debugger": False,
    }
    json.dumps(line)  # a log line is JSON


def test_the_event_pid_a_filtered_stop_a_predicate_error_and_a_crash_are_said() -> None:
    event = StopEvent(kind="first-chance", sequence=1, pid=7, filtered=True)
    line = decision_line(
        event, DecisionRecord(action="skip", reason="no-match"), False, 42, "ZeroDivisionError"
    )
    assert (line["pid"], line["filtered_in_debugger"], line["message"]) == (7, True, None)
    assert line["predicate_error"] == "ZeroDivisionError" and "crash" not in line
    crash = StopEvent(kind="second-chance", sequence=2, crash=CrashInfo(kind="fail-fast", message="boom"))
    line = decision_line(crash, DecisionRecord(action="dump", reason="matched", n=1), True, 42)
    assert line["crash"] == {"kind": "fail-fast", "message": "boom"} and "predicate_error" not in line


def test_write_line_appends_whole_lines_and_does_nothing_without_a_log(tmp_path) -> None:
    path = str(tmp_path / "log.jsonl")
    fd = open_private_log(path)
    try:
        write_line(fd, '{"a": 1}\n')
        write_line(fd, '{"a": 2}\n')
        write_line(-1, "never written\n")
    finally:
        os.close(fd)
    with open(path) as f:
        assert [json.loads(line) for line in f] == [{"a": 1}, {"a": 2}]


def test_decision_log_is_private_even_with_umask_000(tmp_path, umask_000):
    path = str(tmp_path / "log.jsonl")
    fd = open_private_log(path)
    os.close(fd)
    assert os.stat(path).st_mode & 0o777 == 0o600
    # an existing log of ours, made readable by someone: made private again
    os.chmod(path, 0o644)
    os.close(open_private_log(path))
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_decision_log_refuses_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "pydbgauto-decisions.jsonl"
    link.symlink_to(victim)
    with pytest.raises(ConfigurationError, match="symlink"):
        open_private_log(str(link))
    assert victim.read_text() == "precious\n"
    dangling = tmp_path / "other.jsonl"
    dangling.symlink_to(tmp_path / "does-not-exist")
    with pytest.raises(ConfigurationError, match="symlink"):
        open_private_log(str(dangling))
    assert not (tmp_path / "does-not-exist").exists()


def test_decision_log_refuses_hard_links_and_fifos(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.link(victim, tmp_path / "linked.jsonl")
    with pytest.raises(ConfigurationError, match="hard links"):
        open_private_log(str(tmp_path / "linked.jsonl"))
    os.mkfifo(tmp_path / "fifo.jsonl")
    started = time.monotonic()
    with pytest.raises(ConfigurationError):
        open_private_log(str(tmp_path / "fifo.jsonl"))
    assert time.monotonic() - started < 2  # never blocks on a FIFO
