"""What the real lldb+SOS recordings of the sample service (tests/transcripts/lldb/*-service-*) must say.

Recorded by ``scripts/record-transcripts --step service`` from examples/ServiceApp, an ASP.NET Core
minimal API on Kestrel: one request of each kind, attached cold. A real ASP.NET Core stack runs through
the minimal API's compiled request delegate (``DynamicClass.lambda_method<N>``), before which SOS prints
``SOS Warning: Loading symbols for dynamic assemblies is not yet supported`` in the middle of the row; the
call site stands alone on the next line. Like test_lldb_transcripts.py these tests check facts that hold
whatever the run (types, messages, throw sites, the frames around the dynamic one, agreement between
transcripts of the same stop), not the regenerated JSON, so a parser bug cannot be blessed by a re-recording.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from pydbgauto.models import ManagedException, ManagedStack, StackFrame
from pydbgauto.sos import parse_clrstack, parse_clrstack_all, parse_pe, parse_threads

LLDB = Path(__file__).resolve().parent.parent / "transcripts" / "lldb"
RUNTIMES = ("net8", "net10")
WARNING = "SOS Warning: Loading symbols for dynamic assemblies is not yet supported"
DYNAMIC = re.compile(
    r"^DynamicClass\.lambda_method\d+\(System\.Runtime\.CompilerServices\.Closure, System\.Object, "
    r"Microsoft\.AspNetCore\.Http\.HttpContext\)$"
)
THROW = "ServiceApp.Thrower.Throw(ServiceApp.Counters, System.String, System.String)"
THROW_AND_CATCH = "ServiceApp.Thrower.ThrowAndCatch(ServiceApp.Counters, System.String, System.String, Int32)"
MIDDLEWARE = "ServiceApp.Program+<>c__DisplayClass0_0+<<Main>b__2>d.MoveNext()"
# what -> (type, message, HResult, the endpoint's handler, the frame below the throw)
KINDS = {
    "handled": (
        "System.TimeoutException",
        "handled System.TimeoutException #1",
        0x80131505,
        "ServiceApp.Program+<>c__DisplayClass0_0.<Main>b__3(System.String, System.Nullable`1<Int32>)",
        THROW_AND_CATCH,
    ),
    "unhandled": (
        "ServiceApp.OrderRejectedException",
        "unhandled ServiceApp.OrderRejectedException #1",
        0x80070057,
        "ServiceApp.Program+<>c__DisplayClass0_0.<Main>b__4(System.String)",
        "ServiceApp.Program+<>c__DisplayClass0_0.<Main>b__4(System.String)",
    ),
    "background": (
        "System.Collections.Generic.KeyNotFoundException",
        "background System.Collections.Generic.KeyNotFoundException #1",
        0x80131577,
        "ServiceApp.BackgroundThrower+<ExecuteAsync>d__5.MoveNext()",
        THROW_AND_CATCH,
    ),
}
# The SOS row layout: a full-width SP, then an IP or blanks (-f runtime frames).
_ROW_START = re.compile(r"^[0-9A-Fa-f]{16} ")


def text(name: str) -> str:
    path = LLDB / f"{name}.txt"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/record-transcripts --step service")
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def must_pe(name: str) -> ManagedException:
    exc = parse_pe(text(name))
    assert exc is not None, f"{name}: no exception parsed"
    return exc


def managed(stack: ManagedStack) -> List[StackFrame]:
    return [f for f in stack.frames if f.kind == "managed"]


def methods(stack: ManagedStack) -> List[Optional[str]]:
    return [f.method for f in managed(stack)]


def warning_rows(raw: str) -> List[Tuple[int, int]]:
    """(sp, ip) of every row where SOS printed the warning instead of the call site."""
    out = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        if WARNING in line and _ROW_START.match(line):
            sp, ip = line.split()[:2]
            out.append((int(sp, 16), int(ip, 16)))
    return out


def throw_site(stack: ManagedStack) -> Optional[str]:
    """The first managed frame that is not the runtime's dispatch code (.NET 10 stops in DispatchEx)."""
    for f in managed(stack):
        if f.method and not f.method.startswith("System.Runtime.EH."):
            return f.method
    return None


# Every recorded clrstack of the service, and whether its stop runs through the request delegate.
STACKS = [
    (rt, name, dynamic)
    for rt in RUNTIMES
    for name, dynamic in (
        (f"clrstack-{rt}-service-handled", True),
        (f"clrstack-f-{rt}-service-handled", True),
        (f"clrstack-a-{rt}-service-handled", True),
        (f"clrstack-{rt}-service-unhandled", True),
        (f"clrstack-{rt}-service-unhandled-rethrow", False),
        (f"clrstack-{rt}-service-background", False),
    )
]


@pytest.mark.parametrize("runtime,name,dynamic", STACKS, ids=[s[1] for s in STACKS])
def test_the_warning_is_never_a_frame(runtime: str, name: str, dynamic: bool) -> None:
    raw = text(name)
    stack = parse_clrstack(raw)
    assert stack.error is None
    assert not any("SOS Warning" in (f.call_site + (f.method or "")) for f in stack.frames)
    # One frame per row SOS printed: the warning neither adds a frame nor swallows one.
    rows = sum(1 for line in raw.replace("\r\n", "\n").split("\n") if _ROW_START.match(line))
    assert len(stack.frames) == rows
    warned = warning_rows(raw)
    assert (
        bool(warned) == dynamic
    ), f"{name}: the recording should {'' if dynamic else 'not '}have the warning"
    # The row the warning sat in is the dynamic frame: its SP and IP, its name from the next line.
    dynamic_frames = [f for f in stack.frames if f.method and DYNAMIC.match(f.method)]
    assert [(f.sp, f.ip) for f in dynamic_frames] == warned
    for f in dynamic_frames:
        assert f.kind == "managed" and f.module is None
        assert (f.offset is not None) == name.startswith("clrstack-f-")  # -f prints " + <displacement>"


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("what", ["handled", "unhandled"])
def test_request_stacks_run_through_the_request_delegate(runtime: str, what: str) -> None:
    stack = parse_clrstack(text(f"clrstack-{runtime}-service-{what}"))
    names = methods(stack)
    assert throw_site(stack) == THROW
    handler = KINDS[what][3]
    i = names.index(handler)
    # handler <- the compiled request delegate <- the async middleware <- ... <- Kestrel
    assert DYNAMIC.match(names[i + 1] or ""), names[i : i + 3]
    assert names[i + 2] == MIDDLEWARE
    assert any(n and n.startswith("Microsoft.AspNetCore.Server.Kestrel.") for n in names[i + 2 :])
    assert names[-1] == "System.Threading.Thread.StartCallback()" or runtime == "net8"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_handled_stack_is_the_same_in_every_clrstack_form(runtime: str) -> None:
    plain = parse_clrstack(text(f"clrstack-{runtime}-service-handled"))
    with_args = parse_clrstack(text(f"clrstack-a-{runtime}-service-handled"))
    full = parse_clrstack(text(f"clrstack-f-{runtime}-service-handled"))
    assert methods(with_args) == methods(plain)
    # -f names each managed frame's module (not the dynamic one) and adds native frames.
    assert [f.method for f in managed(full)] == methods(plain)
    assert {f.module for f in managed(full) if f.method and DYNAMIC.match(f.method)} == {None}
    assert "ServiceApp.dll" in {f.module for f in managed(full)}
    every = parse_clrstack_all(text(f"clrstack-all-{runtime}-service-handled"))
    (same,) = [s for s in every if s.os_thread_id == plain.os_thread_id]
    assert methods(same) == methods(plain)
    assert not any("SOS Warning" in f.call_site for s in every for f in s.frames)
    table = parse_threads(text(f"clrthreads-{runtime}-service-handled"))
    assert plain.os_thread_id in {t.os_id for t in table.threads}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("what", sorted(KINDS))
def test_pe_at_each_stop(runtime: str, what: str) -> None:
    type_name, message, hresult, _, _ = KINDS[what]
    exc = must_pe(f"pe-{runtime}-service-{what}")
    assert (exc.type, exc.message, exc.hresult) == (type_name, message, hresult)
    assert exc.frames == ()  # nothing is filled in before the first pass


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_background_stack_is_the_hosted_service(runtime: str) -> None:
    stack = parse_clrstack(text(f"clrstack-{runtime}-service-background"))
    names = methods(stack)
    assert throw_site(stack) == THROW
    assert names[names.index(THROW) + 1 : names.index(THROW) + 3] == [THROW_AND_CATCH, KINDS["background"][3]]
    assert not any(n and (DYNAMIC.match(n) or "AspNetCore" in n) for n in names)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unhandled_is_rethrown_by_the_framework(runtime: str) -> None:
    # Kestrel awaits the async middleware's faulted task: ExceptionDispatchInfo.Throw rethrows the
    # same object, a second first-chance event for one throw of the service.
    first = must_pe(f"pe-{runtime}-service-unhandled")
    again = must_pe(f"pe-{runtime}-service-unhandled-rethrow")
    assert again.address == first.address and again.message == first.message
    # By now the object carries the stack of its first throw, dynamic frame included (module UNKNOWN).
    frames = [(f.module, f.method) for f in again.frames]
    assert frames[:2] == [("ServiceApp.dll", THROW), ("ServiceApp.dll", KINDS["unhandled"][3])]
    assert frames[2][0] == "UNKNOWN" and DYNAMIC.match(frames[2][1])
    assert frames[3] == ("ServiceApp.dll", MIDDLEWARE)
    stack = parse_clrstack(text(f"clrstack-{runtime}-service-unhandled-rethrow"))
    assert throw_site(stack) == "System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw()"
    assert stack.os_thread_id == parse_clrstack(text(f"clrstack-{runtime}-service-unhandled")).os_thread_id
