"""The sample app's end-to-end checks again on .NET 9 (self-contained, from NuGet's runtime pack: no .NET 9
is installed). .NET 9 stops where .NET 10 does (AppendExceptionStackFrame, the in-target stub) in another
libcoreclr.so, with its own CoreLib and DAC: the tests below are the suite's own, collected here with
``runtime`` "net9" (their ``runtime != "net8"`` branches are .NET 9+)."""

from __future__ import annotations

import pytest

from .test_lldb_session import (  # noqa: F401 - collected here again, on .NET 9
    test_attach_1000_throws_none_missed_none_doubled,
    test_attach_by_pid_then_detach_leaves_target_running,
    test_attached_crash_stops_at_second_chance_and_dumps_before_death,
    test_crash_stops_at_second_chance_and_dumps_before_death,
    test_dump_at_first_chance_reopens_with_same_exception,
    test_launch_stops_once_per_throw_with_parsed_exception,
    test_threads_throwing_at_once_each_stop_once,
)
from .test_startup_and_stop_cache import (  # noqa: F401
    test_a_repeated_stop_costs_no_sos_command_and_is_still_right,
    test_attach_and_arm_run_no_sos_command,
    test_other_threads_types_and_messages_are_not_served_from_the_cache,
)
from .test_watch import (  # noqa: F401
    test_a_crash_watched_to_its_death_is_counted_at_its_abort,
    test_a_callable_decides_on_what_the_debugger_read,
    test_debugger_side_filter_and_round_trip_agree,
    test_predicates_select_exactly_their_throws,
    test_second_chance_capture_of_a_crash,
)

pytestmark = pytest.mark.lldb


@pytest.fixture
def runtime() -> str:
    return "net9"
