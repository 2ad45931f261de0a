"""Finding the runtime's exception counter in the real, stripped libcoreclr.so files of this machine (the
value it counts is checked against real throws in tests/integration/test_runtime_exception_count.py)."""

from __future__ import annotations

import pytest

from pydbgauto.drivers.lldb import exception_counter, qcalls
from tests.drivers.lldb.test_qcalls import NET8, NET10, segment_ranges


def _runtimes():  # type: ignore[no-untyped-def]
    import os

    found = [pytest.param(NET10[-1], id="net10")] if NET10 else []
    if os.path.exists(NET8):
        found.append(pytest.param(NET8, id="net8"))
    return found


@pytest.mark.parametrize("path", _runtimes())
def test_the_counter_is_one_word_of_writable_data(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    address = exception_counter.counter_address(data)
    assert address is not None
    assert any(lo <= address and address + 4 <= hi for lo, hi in segment_ranges(data, 2))
    assert exception_counter.find_counter(path) == address


@pytest.mark.parametrize("path", _runtimes())
def test_a_function_of_another_body_gives_no_counter(path: str) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    slots, relocations = qcalls.slots_naming(bytes(data), exception_counter.FCALL_NAME)
    for slot in slots:
        function = relocations.get(slot - 8)
        at = qcalls.file_offset(bytes(data), function) if function is not None else None
        if at is not None:
            data[at + 12] = 0x90  # `mov eax, [rax]` (8b 00) altered: not the body measured
    assert exception_counter.counter_address(bytes(data)) is None


def test_no_such_name_gives_no_counter() -> None:
    if not NET10:
        pytest.skip("no .NET 10 shared runtime on this machine")
    with open(NET10[-1], "rb") as f:
        data = f.read().replace(b"\0GetExceptionCount\0", b"\0GetExceptionCounT\0")
    assert exception_counter.counter_address(data) is None
