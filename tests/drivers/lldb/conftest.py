"""Fixtures of the stub's tests that run its code in this process."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.drivers.lldb.test_filter_stub_runs import counting_traps
from tests.drivers.lldb.test_verdict_ask_runs import Asking


@pytest.fixture
def asking() -> Iterator[Asking]:
    """A stub that asks (test_verdict_ask_runs.py's harness), its traps counted; closed after the test."""
    made = Asking()
    try:
        with counting_traps(made):
            yield made
    finally:
        made.close()
