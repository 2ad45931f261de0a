"""exception_fields.py over memory laid out as x64 CoreCLR lays out an exception and its message string
(offsets as SOS's dumpobj of a System.Exception gives them on .NET 8 and 10: _message at 0x10, _HResult
at 0x84). Pure: the reader is given a read function over these bytes."""

from __future__ import annotations

import struct

import pytest

from pydbgauto.drivers.lldb.exception_fields import ExceptionFields

EXC, STR, END = 0x1000, 0x2000, 0x3000


def memory(message: str, hresult: int = -2146233079, null: bool = False):  # type: ignore[no-untyped-def]
    mem = bytearray(END)
    struct.pack_into("<Q", mem, EXC + 0x10, 0 if null else STR)
    struct.pack_into("<i", mem, EXC + 0x84, hresult)
    text = message.encode("utf-16-le")
    struct.pack_into("<i", mem, STR + 8, len(message))
    mem[STR + 12 : STR + 12 + len(text)] = text

    def read(address: int, size: int) -> bytes:
        if address < 0 or address + size > END:
            raise OSError(f"cannot read {size} bytes at {address:#x}")
        return bytes(mem[address : address + size])

    return read


def reader() -> ExceptionFields:
    fields = ExceptionFields()
    fields.learn([("_message", 0x10), ("_HResult", 0x84), ("_innerException", 0x20)])
    return fields


@pytest.mark.parametrize("message", ["", "storm", "é" * 119, "x" * 120, "long " * 200])
def test_message_and_hresult_are_read(message: str) -> None:
    assert reader().read(memory(message), EXC) == (message, 0x80131509)  # unsigned, as pe shows it


def test_no_message() -> None:
    assert reader().read(memory("ignored", hresult=5, null=True), EXC) == (None, 5)


def test_a_short_string_at_the_end_of_readable_memory() -> None:
    read = memory("end")

    def near_the_end(address: int, size: int) -> bytes:  # the string's page is the last one mapped
        if address >= STR and address + size > STR + 64:
            raise OSError("past the mapping")
        return read(address, size)

    assert reader().read(near_the_end, EXC) == ("end", 0x80131509)


def test_an_impossible_length_is_refused() -> None:
    read = memory("x")

    def bad(address: int, size: int) -> bytes:
        data = bytearray(read(address, size))
        if address == STR + 8:
            struct.pack_into("<i", data, 0, -1)
        return bytes(data)

    with pytest.raises(ValueError):
        reader().read(bad, EXC)


def test_no_inner_exception_is_trusted_only_after_it_agreed_with_pe() -> None:
    read = memory("m")  # _innerException (at 0x20 here) is null
    fields = reader()
    for _ in range(3):
        fields.check(fields.read(read, EXC), "m", 0x80131509)
        assert not fields.inner_trusted
        fields.check_inner(fields.inner(read, EXC), None, None)  # pe: InnerException: <none>
    assert fields.trusted and fields.inner_trusted and fields.inner(read, EXC) == 0
    wrong = reader()
    wrong.check_inner(0, 0x7F0000001000, "System.FormatException")  # pe says there is one
    assert wrong.inner_off and not wrong.inner_trusted
    odd = reader()
    odd.check_inner(0, None, "<invalid MethodTable of inner exception>")  # pe saw something unreadable
    assert odd.inner_off
