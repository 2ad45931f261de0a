"""The benchmark mix must parse into what it claims to hold (timing itself is never asserted)."""

from __future__ import annotations

try:
    from tests.sos.bench_parse import MIX, measure
except ImportError:  # plain `pytest` run from elsewhere: pytest puts this folder on sys.path
    from bench_parse import MIX, measure  # type: ignore[no-redef]


def test_mix_parses_to_full_objects() -> None:
    results = [parse(text) for parse, text in MIX]
    pe, stack, threads, events, dump = results
    assert len(pe.frames) == 30 and pe.inner_type == "System.FormatException"
    assert len(stack.frames) == 31 and stack.frames[0].kind == "runtime"
    assert len(threads.threads) == 20
    assert len(events) == 4 and all(e.location == "KERNELBASE!RaiseException+0x69" for e in events)
    assert dump.success


def test_measure_reports_named_baseline() -> None:
    result = measure(0.05)
    assert result["baseline"] == "str.splitlines() over the same text"
    assert result["mb_per_s"] > 0 and result["baseline_mb_per_s"] > 0
