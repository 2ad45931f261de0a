"""Benchmark figures for scripts/bench (not tests: nothing here asserts a time)."""
