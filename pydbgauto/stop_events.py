"""From a driver's raw stop to a StopEvent: the Session's reading of the stopped thread (its stack in
bounds, its exception, how a dying process dies)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, List, Optional, Tuple

from pydbgauto import bounded, crashes
from pydbgauto.drivers.base import RawStop, StopKind
from pydbgauto.errors import PydbgautoError, SosError
from pydbgauto.models import ManagedException, ManagedStack, StopEvent
from pydbgauto.sos import parse_clrstack, parse_pe
from pydbgauto.sos.deepstack import build_stack
from pydbgauto.sos.objects import parse_dumpmt, parse_dumpobj

if TYPE_CHECKING:
    from pydbgauto.session import Session

MAX_TYPE_CHAIN = 32  # a longer chain of base types is not a real one: stop reading there


UNPARSED = "not read by SOS: the type (and the message and HResult where the debugger's filter read them)"
FIELDS_READ = "not read by SOS: the type, message and HResult as the debugger read them from the object"
FIELDS_READ_NO_INNER = FIELDS_READ + "; it has no inner exception"


def event_from(session: "Session", raw: RawStop, parse: bool) -> StopEvent:
    """A driver's raw stop as a StopEvent: the stopped thread's stack and exception parsed when ``parse``;
    what SOS could not tell is in ``error``, never raised. Without ``parse``, the exception is what the
    driver read of the object (its type, when it knows it; ``truncated`` says so), no stack."""
    now = time.time()
    if raw.kind is StopKind.EXIT:
        return StopEvent(
            kind="exit",
            sequence=session._sequence,
            pid=session.pid,
            exit_status=raw.exit_status,
            description=raw.description,
            time=now,
        )
    exception: Optional[ManagedException] = None
    stack: Optional[ManagedStack] = None
    errors: List[str] = []
    if parse:
        pe_text: Optional[str] = None  # the driver's pe of the object, read with the stack
        try:
            wanted = raw.exception_address if raw.kind is not StopKind.BREAK else None
            stack, pe_text = stop_stack(session, raw.thread_id, wanted)
        except (SosError, PydbgautoError) as e:
            errors.append(f"clrstack: {e}")
        try:
            if raw.kind is StopKind.BREAK:  # a break-in has no exception of its own
                exception = None
            elif stack is not None and stack.truncated:  # pe would print every frame: read it in bounds
                exception = bounded.read_exception(
                    session.sos, raw.exception_address, raw.thread_id, stack.depth
                )
            elif pe_text is not None:
                exception = parse_pe(pe_text)
            else:
                exception = session.exception(raw.exception_address)
        except (SosError, PydbgautoError) as e:
            errors.append(f"pe: {e}")
    elif raw.type_chain and raw.exception_address and raw.kind is StopKind.FIRST_CHANCE:
        exception = ManagedException(
            address=raw.exception_address,
            type=raw.type_chain[0],
            message=raw.message,
            hresult=raw.hresult,
            truncated=(FIELDS_READ_NO_INNER if raw.no_inner else FIELDS_READ)
            if raw.fields_read
            else UNPARSED,
        )
    crash = None
    if raw.kind is StopKind.SECOND_CHANCE:
        crash = crashes.classify(exception, crashes.read_report(session.driver.target_stderr, session.pid))
    address = (
        raw.exception_address
        if raw.exception_address is not None
        else (exception.address if exception else None)
    )
    return StopEvent(
        kind=raw.kind.value,
        sequence=session._sequence,
        pid=session.pid,
        thread_id=raw.thread_id,
        exception_address=address,
        exception=exception,
        stack=stack,
        description=raw.description,
        time=now,
        error="; ".join(errors) or None,
        type_chain=raw.type_chain,
        crash=crash,
        matched_in_debugger=raw.filter_matched,
    )


def stop_stack(
    session: "Session", thread_id: Optional[int], exception_address: Optional[int] = None
) -> Tuple[ManagedStack, Optional[str]]:
    """The stopped thread's stack in bounds (a driver with ``stop_stack``), else plain clrstack; and the
    ``pe`` text of ``exception_address`` when the driver read it in the same request."""
    reply = session.driver.stop_stack(
        thread_id, session.stack_frame_limit, session.stack_budget, exception_address
    )
    if reply is None:
        return session.stack(thread_id), None
    if not reply.get("deep"):
        return parse_clrstack(reply["text"]), reply.get("pe")
    return build_stack(reply), None


def type_chain(session: "Session", address: int) -> Tuple[str, ...]:
    """The exception's type and its base types, most derived first (walks ``dumpmt`` parents; each
    MethodTable's chain is kept in the session's cache: type metadata does not change)."""
    header = parse_dumpobj(session.sos(f"dumpobj 0x{address:x}"))
    chain: List[str] = []
    mt: Optional[int] = header.method_table
    while mt and len(chain) < MAX_TYPE_CHAIN:
        cached = session._type_cache.get(mt)
        if cached is not None:
            chain.extend(cached)
            break
        table = parse_dumpmt(session.sos(f"dumpmt 0x{mt:x}"))
        chain.append(table.name)
        mt = table.parent
    result = tuple(chain)
    session._type_cache[header.method_table] = result
    return result
