"""What the real lldb+SOS recordings in tests/transcripts/lldb/ must say, whatever run recorded them.

test_golden.py compares each transcript with its regenerated JSON, so a parser bug that slips into a
re-recording would be blessed along with it. These tests check the facts instead: the types, messages
and throw sites the sample app (examples/ThrowingApp/Program.cs) produces, the kinds of frames, and that
transcripts taken at the same stop agree with each other. Addresses and thread ids differ per run and
are only compared between transcripts of the same stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from pydbgauto import SosError
from pydbgauto.models import ManagedException, ManagedStack, ThreadTable
from pydbgauto.sos import parse_clrstack, parse_clrstack_all, parse_pe, parse_threads

LLDB = Path(__file__).resolve().parent.parent / "transcripts" / "lldb"
RUNTIMES = ("net8", "net10")

# kind -> (type, message, HResult, the method that throws)
KINDS: Dict[str, Tuple[str, str, int, str]] = {
    "invalidop": (
        "System.InvalidOperationException",
        "The order queue timeout expired",
        0x80131509,
        "ThrowingApp.Program.ThrowInvalidOperation()",
    ),
    "custom": (
        "ThrowingApp.OrderRejectedException",
        "Order 42 was rejected: card declined",
        0x80070057,
        "ThrowingApp.Program.ThrowCustom()",
    ),
    "format": (
        "System.FormatException",
        "Bad amount '12,5x'",
        0x80131537,
        "ThrowingApp.Program.ThrowWithInner()",
    ),
    "appex": (
        "System.ApplicationException",
        "Payment failed",
        0x80131600,
        "ThrowingApp.Program.ThrowWithInner()",
    ),
    "timeout": (
        "System.TimeoutException",
        "Backend did not answer",
        0x80131505,
        "ThrowingApp.Program.RethrowScenario()",
    ),
    "rethrow": (
        "System.TimeoutException",
        "Backend did not answer",
        0x80131505,
        "ThrowingApp.Program.RethrowScenario()",
    ),
    "nullref": (
        "System.NullReferenceException",
        "Object reference not set to an instance of an object.",
        0x80004003,
        "ThrowingApp.Program.NullDereference()",
    ),
}
CRASH_MESSAGE = "Unhandled: the service is going down"
# The runtime frame below the first-chance stop: .NET 8 throws from a helper; .NET 10's managed EH
# records a SoftwareExceptionFrame (a FaultingExceptionFrame for the hardware fault).
THROW_FRAME = {"net8": "HelperMethodFrame", "net10": "SoftwareExceptionFrame"}


def kinds(runtime: str) -> List[str]:
    # .NET 8 raises no first-chance event for a null dereference (docs/linux.md, Limits).
    return [k for k in KINDS if not (runtime == "net8" and k == "nullref")]


def text(name: str) -> str:
    path = LLDB / f"{name}.txt"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/record-transcripts")
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def pe(name: str) -> Optional[ManagedException]:
    return parse_pe(text(name))


def must_pe(name: str) -> ManagedException:
    exc = pe(name)
    assert exc is not None, f"{name}: no exception parsed"
    return exc


def stack(name: str) -> ManagedStack:
    return parse_clrstack(text(name))


def threads(name: str) -> ThreadTable:
    return parse_threads(text(name))


def methods(s: ManagedStack) -> List[Optional[str]]:
    return [f.method for f in s.frames if f.kind == "managed"]


FIRST_CHANCE = [(rt, k) for rt in RUNTIMES for k in kinds(rt)]


@pytest.mark.parametrize("runtime,kind", FIRST_CHANCE)
def test_pe_by_address_at_first_chance(runtime: str, kind: str) -> None:
    type_name, message, hresult, _ = KINDS[kind]
    exc = must_pe(f"pe-{runtime}-{kind}")
    assert (exc.type, exc.message, exc.hresult) == (type_name, message, hresult)
    assert exc.stack_trace_string is None and exc.nested == ()
    if kind == "rethrow":
        # The object thrown before carries the stack of its first throw.
        assert [f.method for f in exc.frames] == ["ThrowingApp.Program.RethrowScenario()"]
        assert exc.frames[0].module == "ThrowingApp.dll" and exc.frames[0].offset
    else:
        assert exc.frames == ()  # nothing is filled in before the first pass


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_addresses_agree_within_a_run(runtime: str) -> None:
    appex, fmt = must_pe(f"pe-{runtime}-appex"), must_pe(f"pe-{runtime}-format")
    assert (appex.inner_type, appex.inner_address) == ("System.FormatException", fmt.address)
    assert appex.inner_address != appex.address
    assert must_pe(f"pe-{runtime}-rethrow").address == must_pe(f"pe-{runtime}-timeout").address


@pytest.mark.parametrize("kind", kinds("net8"))
def test_net8_bare_pe_shows_the_new_exception(kind: str) -> None:
    # At __cxa_rethrow the thread's current exception is already the new one.
    assert must_pe(f"pe-bare-net8-{kind}") == must_pe(f"pe-net8-{kind}")


def test_net10_bare_pe_shows_the_previous_exception_at_dispatch() -> None:
    # At DispatchEx entry the new exception is not yet the thread's: a bare pe shows the one before.
    for kind in ("invalidop", "custom", "format", "timeout", "nullref"):
        assert pe(f"pe-bare-net10-{kind}") is None, kind
    outer = must_pe("pe-bare-net10-appex")
    assert outer.type == "System.FormatException" and outer.has_nested
    assert outer.address == must_pe("pe-net10-format").address


def test_nested_blocks_on_net10() -> None:
    exc = must_pe("pe-nested-net10-inner-by-address")
    assert exc.type == "System.ApplicationException" and exc.has_nested
    assert [n.type for n in exc.nested] == ["System.FormatException"]
    assert exc.nested[0].address == exc.inner_address
    assert [f.method for f in exc.nested[0].frames] == ["ThrowingApp.Program.ThrowWithInner()"]
    assert exc.nested[0].nested == () and not exc.nested[0].has_nested


def test_no_nested_exceptions_seen_on_net8() -> None:
    # At __cxa_rethrow the legacy EH has not linked the outer tracker to the inner one yet.
    exc = must_pe("pe-nested-net8-inner-by-address")
    assert exc.type == "System.ApplicationException" and exc.inner_type == "System.FormatException"
    assert exc.nested == () and not exc.has_nested


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_crash_second_chance_has_generated_stack(runtime: str) -> None:
    first = must_pe(f"pe-{runtime}-crash-first-chance")
    second = must_pe(f"pe-{runtime}-crash-second-chance")
    assert first.address == second.address and first.message == second.message == CRASH_MESSAGE
    assert first.frames == ()
    assert [(f.module, f.method) for f in second.frames] == [
        ("ThrowingApp.dll", "ThrowingApp.Program.Crash()"),
        ("ThrowingApp.dll", "ThrowingApp.Program.Main(System.String[])"),
    ]
    assert all(f.sp and f.ip and f.offset for f in second.frames)
    assert must_pe(f"pe-nested-{runtime}-crash-second-chance") == second


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", ["not-an-exception", "zero", "unmanaged-thread"])
def test_pe_of_no_exception_object_is_an_sos_error(runtime: str, name: str) -> None:
    with pytest.raises(SosError):
        parse_pe(text(f"pe-{runtime}-{name}"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pe_on_a_thread_without_exception_is_none(runtime: str) -> None:
    assert pe(f"pe-{runtime}-no-exception") is None


@pytest.mark.parametrize("runtime,kind", FIRST_CHANCE)
def test_clrstack_at_first_chance(runtime: str, kind: str) -> None:
    s = stack(f"clrstack-{runtime}-{kind}")
    assert s.os_thread_id and s.debugger_thread_index == 1 and s.error is None
    assert {f.kind for f in s.frames} <= {"managed", "runtime"}  # no native frames without -f
    thrower = KINDS[kind][3]
    at = next(i for i, f in enumerate(s.frames) if f.method == thrower)
    above = s.frames[at - 1]
    expected = "FaultingExceptionFrame" if kind == "nullref" else THROW_FRAME[runtime]
    assert (above.kind, above.frame_type, above.method, above.ip is not None) == (
        "runtime",
        expected,
        None,
        True,
    )
    assert methods(s)[-1] == "ThrowingApp.Program.Main(System.String[])"
    if runtime != "net8":
        assert (
            s.frames[0].method
            == "System.Runtime.EH.DispatchEx(System.Runtime.StackFrameIterator ByRef, ExInfo ByRef)"
        )


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("option", ["a", "r"])
def test_clrstack_a_and_r_add_no_frames(runtime: str, option: str) -> None:
    # The same stop as clrstack-<rt>-invalidop: PARAMETERS/LOCALS and register lines are not frames.
    plain, other = stack(f"clrstack-{runtime}-invalidop"), stack(f"clrstack-{option}-{runtime}-invalidop")
    assert other.frames == plain.frames and other.os_thread_id == plain.os_thread_id


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kind", ["invalidop", "appex", "rethrow", "crash"])
def test_clrstack_f_frame_kinds(runtime: str, kind: str) -> None:
    s = stack(f"clrstack-f-{runtime}-{kind}")
    runtime_frames = [f for f in s.frames if f.kind == "runtime"]
    native = [f for f in s.frames if f.kind == "native"]
    managed = [f for f in s.frames if f.kind == "managed"]
    assert runtime_frames and all(f.ip is None and f.frame_type for f in runtime_frames)
    assert {f.module for f in managed} <= {"ThrowingApp.dll", "System.Private.CoreLib.dll"}
    assert all(f.method and f.module and not f.module.endswith((".dll", ".exe")) for f in native)
    assert {"libcoreclr.so", "libc.so.6"} <= {f.module for f in native}
    start = next(f for f in native if f.method == "__libc_start_call_main")
    assert start.source_file and start.source_file.endswith(".h") and start.line and start.offset
    assert plain_methods(runtime, kind) == [f.method for f in managed]
    if runtime == "net8" and kind != "crash":
        assert (s.frames[0].module, s.frames[0].method, s.frames[0].offset) == (
            "libstdc++.so.6",
            "__cxa_rethrow",
            None,
        )
    if kind == "crash":
        assert s.frames[0].module == "libc.so.6"  # the abort that ends the process


def plain_methods(runtime: str, kind: str) -> List[Optional[str]]:
    return methods(stack(f"clrstack-{runtime}-{kind}"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clrstack_of_an_unmanaged_thread_is_an_error_not_an_exception(runtime: str) -> None:
    s = stack(f"clrstack-{runtime}-unmanaged-thread")
    assert s.os_thread_id and s.frames == ()
    assert s.error is not None and "Unable to walk the managed stack" in s.error and "80070057" in s.error


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clrstack_all_matches_clrthreads_of_the_same_stop(runtime: str) -> None:
    stacks = parse_clrstack_all(text(f"clrstack-all-{runtime}-threads"))
    table = threads(f"clrthreads-{runtime}-threads")
    assert [s.os_thread_id for s in stacks] == [t.os_id for t in table.threads if t.dbg_id is not None]
    assert all(s.debugger_thread_index is None for s in stacks)
    workers = [s for s in stacks if "ThrowingApp.Program.Guard(System.Action)" in methods(s)]
    assert len(workers) >= 1
    main = stacks[0]
    assert methods(main)[-2:] == [
        "ThrowingApp.Program.Threads(Int32)",
        "ThrowingApp.Program.Main(System.String[])",
    ]
    worker = stack(f"clrstack-{runtime}-threads-worker")
    assert any(s.frames == worker.frames and s.os_thread_id == worker.os_thread_id for s in stacks)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clrthreads_threads(runtime: str) -> None:
    table = threads(f"clrthreads-{runtime}-threads")
    assert table.thread_count == len(table.threads) and table.hosted_runtime == "no"
    assert [t.special for t in table.threads].count("Finalizer") == 1
    holding = [t for t in table.threads if t.exception_type is not None]
    assert all(
        t.exception_type == "System.InvalidOperationException" and t.exception_address for t in holding
    )
    if runtime == "net8":
        assert holding  # at __cxa_rethrow the stopped thread already holds its exception
    dead = [t for t in table.threads if t.dbg_id is None]
    assert table.dead == len(dead) and all(t.os_id == 0 for t in dead)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_clrthreads_at_crash_names_the_crashing_exception(runtime: str) -> None:
    table = threads(f"clrthreads-{runtime}-crash")
    holding = [t for t in table.threads if t.exception_type]
    assert [(t.dbg_id, t.exception_type) for t in holding] == [(1, "System.InvalidOperationException")]
    assert holding[0].exception_address == must_pe(f"pe-{runtime}-crash-second-chance").address
    assert stack(f"clrstack-{runtime}-crash").os_thread_id == holding[0].os_id


@pytest.mark.parametrize("runtime,kind", [(rt, k) for rt in RUNTIMES for k in ("appex", "rethrow")])
def test_clrthreads_nested_flag(runtime: str, kind: str) -> None:
    main = threads(f"clrthreads-{runtime}-{kind}").threads[0]
    if runtime != "net8":
        # At DispatchEx the thread still holds the previous exception, with the new one nested.
        previous = {"appex": "System.FormatException", "rethrow": "System.TimeoutException"}[kind]
        assert (main.exception_type, main.nested) == (previous, True)
    else:
        assert (main.exception_type, main.nested) == (KINDS[kind][0], False)
        assert main.exception_address == must_pe(f"pe-net8-{kind}").address
