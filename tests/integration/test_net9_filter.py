"""The in-target filter's and the asking's checks again on .NET 9 (FilterApp published self-contained for
net9.0 from NuGet's runtime pack), collected here with ``runtime`` "net9": exactly one event per matching
throw, nothing stopped for a type that cannot match (counted), the runtime's exception count, leaving."""

from __future__ import annotations

import pytest

from .test_fast_filter import app, filterapp, filterapp_builds  # noqa: F401 - fixtures
from .test_fast_filter import (  # noqa: F401 - collected here again, on .NET 9
    test_a_non_matching_storm_stops_once_per_type,
    test_a_target_that_starts_processes_is_not_hung_and_loses_no_throw,
    test_a_watch_counts_the_throws_it_never_stopped_for,
    test_a_watch_ended_by_its_dump_counts_to_the_match,
    test_a_process_killed_mid_watch_has_no_count,
    test_a_watch_to_the_exit_counts_to_the_exit_call,
    test_exactly_one_event_per_matching_throw,
    test_leaving_puts_the_code_back_and_frees_the_pages,
    test_the_same_events_as_the_every_exception_mode,
)
from .test_python_question import (  # noqa: F401
    test_a_callable_is_asked_each_throw_runs_it_once_and_a_match_is_one_event,
    test_each_matching_throw_is_one_event,
)

pytestmark = pytest.mark.lldb


@pytest.fixture
def runtime() -> str:
    return "net9"
