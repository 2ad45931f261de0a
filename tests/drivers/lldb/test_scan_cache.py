"""scan_cache.py: a scan of a file runs once per unchanged file, and the cache is the user's own."""

from __future__ import annotations

import os
import stat
from typing import List, Optional

import pytest

from pydbgauto.drivers.lldb import scan_cache


@pytest.fixture
def cache_home(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYDBGAUTO_NO_SCAN_CACHE", raising=False)
    return tmp_path / "cache" / "pydbgauto"


def counting(answer: Optional[int], calls: List[int]):  # type: ignore[no-untyped-def]
    def scan() -> Optional[int]:
        calls.append(1)
        return answer

    return scan


def test_a_scan_runs_once_per_unchanged_file_none_included(cache_home, tmp_path) -> None:
    runtime = tmp_path / "libcoreclr.so"
    runtime.write_bytes(b"x" * 100)
    calls: List[int] = []
    for _ in range(3):
        assert scan_cache.remembered(str(runtime), "funnel", counting(0x1234, calls)) == 0x1234
        assert scan_cache.remembered(str(runtime), "qcall X", counting(None, calls)) is None
    assert len(calls) == 2
    assert stat.S_IMODE(os.stat(cache_home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(cache_home / scan_cache.FILE_NAME).st_mode) == 0o600
    assert [p.name for p in cache_home.iterdir()] == [scan_cache.FILE_NAME]  # no temporary left


def test_an_answer_found_only_is_kept_when_asked_so(cache_home, tmp_path) -> None:
    """keep_none=False (the runtime's signal handlers: another process of the file may have them)."""
    runtime = tmp_path / "libcoreclr.so"
    runtime.write_bytes(b"x" * 100)
    calls: List[int] = []
    assert (
        scan_cache.remembered(str(runtime), "signal handler 11", counting(None, calls), keep_none=False)
        is None
    )
    assert (
        scan_cache.remembered(str(runtime), "signal handler 11", counting(0x99, calls), keep_none=False)
        == 0x99
    )
    assert (
        scan_cache.remembered(str(runtime), "signal handler 11", counting(None, calls), keep_none=False)
        == 0x99
    )
    assert len(calls) == 2


def test_a_fact_kept_is_known_until_the_file_changes(cache_home, tmp_path) -> None:
    runtime = tmp_path / "libcoreclr.so"
    runtime.write_bytes(b"x" * 100)
    assert scan_cache.known(str(runtime), "Thread slot") is None
    scan_cache.keep(str(runtime), "Thread slot", 0x2A8)
    assert scan_cache.known(str(runtime), "Thread slot") == 0x2A8
    assert scan_cache.known(str(runtime), "another slot") is None
    runtime.write_bytes(b"y" * 101)
    assert scan_cache.known(str(runtime), "Thread slot") is None


def test_a_changed_file_is_scanned_again(cache_home, tmp_path) -> None:
    runtime = tmp_path / "libcoreclr.so"
    runtime.write_bytes(b"x" * 100)
    calls: List[int] = []
    assert scan_cache.remembered(str(runtime), "funnel", counting(1, calls)) == 1
    runtime.write_bytes(b"y" * 101)  # an update of the runtime
    assert scan_cache.remembered(str(runtime), "funnel", counting(2, calls)) == 2
    assert len(calls) == 2


def test_without_a_usable_cache_the_scan_just_runs(cache_home, tmp_path, monkeypatch) -> None:
    runtime = tmp_path / "libcoreclr.so"
    runtime.write_bytes(b"x")
    calls: List[int] = []
    monkeypatch.setenv("XDG_CACHE_HOME", str(runtime))  # a file, not a folder: nothing can be written
    assert scan_cache.remembered(str(runtime), "funnel", counting(7, calls)) == 7
    assert scan_cache.remembered(str(runtime), "funnel", counting(7, calls)) == 7
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYDBGAUTO_NO_SCAN_CACHE", "1")
    assert scan_cache.remembered(str(runtime), "funnel", counting(7, calls)) == 7
    assert len(calls) == 3
    (tmp_path / "cache").mkdir()
    monkeypatch.delenv("PYDBGAUTO_NO_SCAN_CACHE")
    os.makedirs(cache_home)
    (cache_home / scan_cache.FILE_NAME).write_text("not json")
    assert scan_cache.remembered(str(runtime), "funnel", counting(7, calls)) == 7  # rewritten
    assert scan_cache.remembered(str(runtime), "funnel", counting(7, calls)) == 7
    assert len(calls) == 4


def test_what_is_kept_is_bounded(cache_home, tmp_path) -> None:
    runtime = tmp_path / "libcoreclr.so"
    runtime.write_bytes(b"x")
    for i in range(scan_cache.MAX_ENTRIES + 10):
        scan_cache.remembered(str(runtime), f"scan {i}", lambda: i)
    assert len(scan_cache._load()) == scan_cache.MAX_ENTRIES
