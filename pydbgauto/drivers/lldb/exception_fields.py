"""An exception's message and HResult read from the object itself, for the in-agent filter.

A message or HResult predicate used to cost an SOS ``pe`` at every stop (~50 ms: SOS re-reads the target
after each resume), so a storm under such a filter kept ~20 exceptions/s. ``System.Exception``'s
``_message`` (a string reference) and ``_HResult`` (an int) sit at the same offsets in every exception
object (derived types add their fields after the base's), so the offsets are learnt once from SOS's
``dumpobj`` and then read as memory: the string's length at +8, its UTF-16 text at +12 (x64 CoreCLR).
The first CHECKS reads are compared with ``pe``; one difference and the reader is off for the session
(every stop goes back to ``pe``), so a runtime that lays strings or exceptions out otherwise costs speed,
never a wrong answer. Pure but for the ``read`` callable it is given.
"""

from __future__ import annotations

import struct
from typing import Callable, Optional, Sequence, Tuple

CHECKS = 3  # reads compared with SOS's pe before the reader is trusted
MAX_MESSAGE = 1 << 16  # characters read of a message; a longer one is left to pe (the reader says None)
STRING_LENGTH_AT, STRING_CHARS_AT = 8, 12
FIRST_CHARS = 120  # characters read with the length (a longer message costs one more read)


class ExceptionFields:
    """``_message`` / ``_HResult`` of exception objects, by offsets learnt from one ``dumpobj``."""

    def __init__(self) -> None:
        self.message_at: Optional[int] = None
        self.hresult_at: Optional[int] = None
        self.checked = 0
        self.off: Optional[str] = None  # why the reader is not used
        # ``_innerException``: read only to tell that there is none (its type needs SOS); trusted apart
        self.inner_at: Optional[int] = None
        self.inner_checked = 0
        self.inner_off: Optional[str] = None

    @property
    def trusted(self) -> bool:
        return self.off is None and self.message_at is not None and self.checked >= CHECKS

    @property
    def inner_trusted(self) -> bool:
        return (
            self.trusted
            and self.inner_off is None
            and self.inner_at is not None
            and self.inner_checked >= CHECKS
        )

    def learn(self, rows: Sequence[Tuple[str, Optional[int]]]) -> None:
        """(name, offset) rows of an exception's ``dumpobj`` field table."""
        offsets = {name: offset for name, offset in rows if offset is not None}
        self.message_at, self.hresult_at = offsets.get("_message"), offsets.get("_HResult")
        self.inner_at = offsets.get("_innerException")
        if self.message_at is None or self.hresult_at is None:
            self.off = "dumpobj lists no _message / _HResult field"

    def read(self, read: Callable[[int, int], bytes], address: int) -> Tuple[Optional[str], int]:
        """(message or None, unsigned HResult) of the exception at ``address``; raises ValueError if
        unreadable."""
        assert self.message_at is not None and self.hresult_at is not None
        # One read for both fields, one for the string's length and its first characters: each read is
        # a call into lldb (and a packet to lldb-server for a line not yet read at this stop).
        low, high = min(self.message_at, self.hresult_at), max(self.message_at, self.hresult_at) + 8
        span = read(address + low, high - low)
        (string,) = struct.unpack_from("<Q", span, self.message_at - low)
        # unsigned, as pe shows it and as hresult() predicates hold it (the field is a signed int)
        (hresult,) = struct.unpack_from("<I", span, self.hresult_at - low)
        if not string:
            return None, hresult
        try:  # the string object is at least this long only when its text is: else read it exactly
            head = read(string + STRING_LENGTH_AT, STRING_CHARS_AT - STRING_LENGTH_AT + 2 * FIRST_CHARS)
        except Exception:  # noqa: BLE001 - past the end of a mapping: read what is there
            head = read(string + STRING_LENGTH_AT, 4)
        (length,) = struct.unpack_from("<i", head, 0)
        if not 0 <= length <= MAX_MESSAGE:
            raise ValueError(f"a message of {length} characters")
        chars = head[STRING_CHARS_AT - STRING_LENGTH_AT :]
        if len(chars) < 2 * length:
            chars = read(string + STRING_CHARS_AT, 2 * length)
        return chars[: 2 * length].decode("utf-16-le", errors="replace"), hresult

    def inner(self, read: Callable[[int, int], bytes], address: int) -> int:
        """The ``_innerException`` reference of the exception at ``address`` (0: none)."""
        assert self.inner_at is not None
        return int(struct.unpack("<Q", read(address + self.inner_at, 8))[0])

    def check_inner(
        self, pointer: int, pe_inner_address: Optional[int], pe_inner_type: Optional[str]
    ) -> None:
        """Compare one inner read with pe's (its address, or none at all)."""
        expected = pe_inner_address if pe_inner_address is not None else (None if pe_inner_type else 0)
        if pointer != expected:
            self.inner_off = f"read inner {pointer:#x} where pe says {(pe_inner_address, pe_inner_type)!r}"
        else:
            self.inner_checked += 1

    def check(
        self, read_value: Tuple[Optional[str], int], pe_message: Optional[str], pe_hresult: Optional[int]
    ) -> None:
        """Compare one read with ``pe``'s: agreements build trust; one difference turns the reader off."""
        message, hresult = read_value
        if message != pe_message or (
            pe_hresult is not None and (hresult & 0xFFFFFFFF) != (pe_hresult & 0xFFFFFFFF)
        ):
            self.off = f"read {read_value!r} where pe says {(pe_message, pe_hresult)!r}"
        else:
            self.checked += 1
