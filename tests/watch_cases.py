"""Predicate cases shared by the real and the replayed watch tests
(tests/integration/test_watch.py, tests/test_watch_replay.py): each predicate and the throws of the
sample app's `first-chance` scenario it must select.

The scenario throws: 1 InvalidOperation, 2 OrderRejected (an ArgumentException), 3 Format, 4 Application with
the Format as inner, 5 Timeout, 6 the same Timeout rethrown, 7 NullReference (a hardware
fault: seen on .NET 8 since pydbgauto follows the runtime's fault handling; the recorded .NET 8 sessions
predate that and hold 6).
"""

import pydbgauto as pda

CASES = {
    "type": (pda.exception_type("System.InvalidOperationException"), ["System.InvalidOperationException"]),
    "derived": (
        pda.exception_type("System.ArgumentException", derived=True),
        ["ThrowingApp.OrderRejectedException"],
    ),
    "message": (pda.message_matches(r"card declined"), ["ThrowingApp.OrderRejectedException"]),
    "hresult": (pda.hresult(0x80131509), ["System.InvalidOperationException"]),  # COR_E_INVALIDOPERATION
    "inner": (pda.inner(pda.exception_type("System.FormatException")), ["System.ApplicationException"]),
    "thrown_in": (pda.thrown_in(r"RethrowScenario"), ["System.TimeoutException"]),
}


def throws_seen(runtime: str, recorded: bool = False) -> int:
    """Exceptions of `first-chance` a watch sees; the recorded .NET 8 sessions lack the null dereference."""
    return 6 if recorded and runtime == "net8" else 7
