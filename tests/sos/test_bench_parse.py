"""The benchmark mix must parse into what it claims to hold, and measure() must count what it says it
counts (timing itself is never asserted)."""

from __future__ import annotations

from typing import Any, List

import pytest

from pydbgauto.models import DebugEvent, DumpResult, ManagedException, ManagedStack, ThreadTable

try:
    from tests.sos import bench_parse
except ImportError:  # plain `pytest` run from elsewhere: pytest puts this folder on sys.path
    import bench_parse  # type: ignore[no-redef]

MIX = bench_parse.MIX


def test_mix_parses_to_full_objects() -> None:
    results = [parse(text) for parse, text in MIX]
    pe, stack, threads, events, dump = results
    assert isinstance(pe, ManagedException) and isinstance(stack, ManagedStack)
    assert isinstance(threads, ThreadTable) and isinstance(dump, DumpResult)
    assert all(isinstance(e, DebugEvent) for e in events)

    assert pe.address == 0x7F5EC808CE00 and pe.type == "System.InvalidOperationException"
    assert pe.hresult == 0x80131509 and pe.inner_address == 0x7F5EC808CF00
    assert len(pe.frames) == 30 and pe.inner_type == "System.FormatException"
    assert [(f.method, f.offset, f.line) for f in (pe.frames[0], pe.frames[-1])] == [
        ("ThrowingApp.Program.Level0(System.String)", 0x10, 10),
        ("ThrowingApp.Program.Level29(System.String)", 29 + 16, 39),
    ]

    assert len(stack.frames) == 31 and stack.frames[0].kind == "runtime"
    assert stack.os_thread_id == 0x2F7C and stack.debugger_thread_index == 1
    assert stack.frames[0].frame_type == "HelperMethodFrame"
    assert [f.line for f in stack.frames[1:]] == list(range(10, 40))
    assert all(f.source_file == "/src/ThrowingApp/Program.cs" for f in stack.frames[1:])

    assert threads.thread_count == 20 and len(threads.threads) == 20
    assert [t.os_id for t in threads.threads] == [0x4D20 + i for i in range(20)]
    assert all(t.exception_type == "System.InvalidOperationException" for t in threads.threads)
    assert threads.threads[0].special == "Threadpool Worker"

    assert len(events) == 4 and all(e.location == "KERNELBASE!RaiseException+0x69" for e in events)
    assert {(e.pid, e.tid, e.code, e.chance, e.clr_type) for e in events} == {
        (0x2D8C, 0x1F34, 0xE0434352, 1, "System.InvalidOperationException")
    }
    assert dump.success and dump.path == "C:\\dumps\\app.dmp"


class SteppingClock:
    """Test double for time.perf_counter: one second later at every reading, so the rates are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_rate_is_bytes_per_round_over_the_time_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_parse.time, "perf_counter", SteppingClock())
    calls: List[int] = []
    # windows of 3 s: the clock is read at the start and after each round, so 3 rounds in 3 s
    rate = bench_parse._rate(lambda: calls.append(1), 2_000_000, 3.0)
    assert len(calls) == 3 and rate == pytest.approx(2.0)


def test_measure_reports_named_baseline() -> None:
    result: Any = bench_parse.measure(0.05)
    assert set(result) == {
        "mb_per_s",
        "mb_per_s_median",
        "baseline",
        "baseline_mb_per_s",
        "ratio_to_baseline",
        "bytes_per_round",
        "target_mb_per_s",
    }
    assert result["baseline"] == "str.splitlines() over the same text"
    assert result["bytes_per_round"] == sum(len(text.encode("utf-8")) for _, text in MIX)
    assert 0 < result["mb_per_s_median"] <= result["mb_per_s"]  # the median of the windows, the best one
    assert result["ratio_to_baseline"] == pytest.approx(
        result["mb_per_s"] / result["baseline_mb_per_s"], rel=0.01
    )
