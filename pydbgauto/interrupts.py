"""Signals that end a watch, held back for a few statements that must run together.

Python runs a signal handler in the main thread between any two bytecodes, whatever the thread masks say
(another thread's C handler trips it). The lldb driver must never be interrupted between sending a request
and noting it as in flight (the cancel would not know about it): it wraps such statements in
:func:`critical`, and the watch's handler passes its exception through :func:`deliver`, which raises it at
once outside a critical section, or when the section ends.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

_depth = 0
_pending: Optional[BaseException] = None


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Statements a signal must not split: its exception is raised when they are done."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            error, _pending = _pending, None
            raise error


def deliver(error: BaseException) -> None:
    """Raise ``error`` now, or at the end of the critical section the main thread is in."""
    global _pending
    if _depth:
        _pending = error
        return
    raise error
