"""Golden transcripts: every tests/transcripts/**/<name>.txt with a <name>.expected.json beside it.

See tests/sos/regen_expected.py for how the parser is picked and how the JSON is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest

try:
    from tests.sos.regen_expected import PARSERS, expected_path, read_transcript, run_parser, split_header
except ImportError:  # plain `pytest` run from elsewhere: pytest puts this folder on sys.path
    from regen_expected import (  # type: ignore[no-redef]
        PARSERS,
        expected_path,
        read_transcript,
        run_parser,
        split_header,
    )

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"


def _cases() -> List[Path]:
    return sorted(p for p in TRANSCRIPTS.rglob("*.txt") if expected_path(p).exists())


@pytest.mark.parametrize("path", _cases(), ids=lambda p: str(p.relative_to(TRANSCRIPTS)))
def test_transcript_matches_expected(path: Path) -> None:
    expected = json.loads(expected_path(path).read_text(encoding="utf-8"))
    assert run_parser(path) == expected


def test_there_are_golden_cases() -> None:
    # The documented cdb forms are always present, so an empty list means the harness broke.
    assert any("cdb-documented" in str(p) for p in _cases())


def test_every_golden_transcript_names_a_parser() -> None:
    # Only transcripts with an expected JSON are golden; other folders (replay doubles) are not ours.
    for path in _cases():
        kind, _ = split_header(path, read_transcript(path))
        assert kind in PARSERS


def test_header_is_not_passed_to_the_parser(tmp_path: Path) -> None:
    path = tmp_path / "anything.txt"
    path.write_text("# parser: dump\nCreating /tmp/x.dmp - mini user dump\nDump successfully written\n")
    assert run_parser(path) == {
        "parser": "dump",
        "result": {"path": "/tmp/x.dmp", "success": True, "error": None},
    }


def test_prefix_picks_clrstack_all_before_clrstack(tmp_path: Path) -> None:
    assert split_header(tmp_path / "clrstack-all-main.txt", "")[0] == "clrstack-all"
    assert split_header(tmp_path / "clrstack-main.txt", "")[0] == "clrstack"


def test_unknown_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        split_header(tmp_path / "mystery.txt", "text")


def test_sos_failures_are_recorded_as_errors(tmp_path: Path) -> None:
    path = tmp_path / "pe-dac.txt"
    path.write_text("Failed to load data access module, 0x80004005\n")
    result = run_parser(path)
    assert result["error"]["type"] == "SosError"
