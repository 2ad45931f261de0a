"""pydbgauto/cli/target_output.py: a launched target's output files followed, whole lines at a time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, List, Mapping, Tuple

from pydbgauto.cli import target_output
from pydbgauto.cli.target_output import OutputFollower


def follower(tmp_path: Path) -> Tuple[OutputFollower, List[Tuple[str, str]], Path]:
    seen: List[Tuple[str, str]] = []

    def emit(kind: str, data: Mapping[str, Any]) -> None:
        assert kind == "target-output"
        seen.append((data["stream"], data["text"]))

    out = tmp_path / "target.stdout"
    files = {"stdout": str(out), "stderr": str(tmp_path / "target.stderr")}  # stderr never created
    return OutputFollower(files, emit), seen, out


def test_whole_lines_only_until_a_partial_one_has_waited(tmp_path, monkeypatch):
    f, seen, out = follower(tmp_path)
    f.drain()  # no file yet: nothing, no error
    out.write_bytes(b"READY 1\nhalf")
    f.drain()
    assert seen == [("stdout", "READY 1\n")]
    with out.open("ab") as w:
        w.write(b" a line\nnext")
    f.drain()
    assert seen[1:] == [("stdout", "half a line\n")]
    monkeypatch.setattr(target_output, "PARTIAL_AFTER", 0.0)  # a prompt left without its line break
    f.drain()
    assert seen[2:] == [("stdout", "next")]


def test_the_last_drain_takes_everything_and_bad_utf8_is_replaced(tmp_path):
    f, seen, out = follower(tmp_path)
    out.write_bytes(b"x" * (target_output.CHUNK + 10) + b"\n\xff tail")
    f.stop()  # never started: stop is the final drain
    assert "".join(text for _, text in seen) == "x" * (target_output.CHUNK + 10) + "\n\ufffd tail"


def test_the_wrapped_callback_gets_the_output_first(tmp_path):
    f, seen, out = follower(tmp_path)
    order: List[str] = []
    wrapped = f.wrap(lambda kind, data: order.append(kind))
    out.write_bytes(b"THROW 1\n")
    wrapped("decision", {})
    assert seen == [("stdout", "THROW 1\n")] and order == ["decision"]


def test_the_thread_follows_as_the_file_grows(tmp_path):
    f, seen, out = follower(tmp_path)
    f.start()
    try:
        out.write_bytes(b"one\n")
        for _ in range(100):
            if seen:
                break
            time.sleep(0.05)
    finally:
        f.stop()
    assert seen == [("stdout", "one\n")]
