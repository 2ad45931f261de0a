"""Finding runtime functions by QCall name in the real, stripped libcoreclr.so files of this machine."""

from __future__ import annotations

import glob
import os
import struct

import pytest

from pydbgauto.drivers.lldb import qcalls

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NET10 = sorted(glob.glob("/usr/share/dotnet/shared/Microsoft.NETCore.App/10.*/libcoreclr.so"))
NET8 = os.path.join(ROOT, ".build", "app-net8", "libcoreclr.so")


def _executable_ranges(data: bytes):  # type: ignore[no-untyped-def]
    return segment_ranges(data, 1)


def segment_ranges(data: bytes, flag: int):  # type: ignore[no-untyped-def]
    """[start, end) of each loaded segment with ``flag`` (1: executable, 2: writable)."""
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, p_flags, _o, p_vaddr, _p, _fs, p_memsz = struct.unpack_from(
            "<IIQQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1 and p_flags & flag:
            yield p_vaddr, p_vaddr + p_memsz


@pytest.mark.skipif(not NET10, reason="no .NET 10 shared runtime on this machine")
def test_net10_append_exception_stack_frame_is_code():
    with open(NET10[-1], "rb") as f:
        data = f.read()
    address = qcalls.qcall_address(data, "AppendExceptionStackFrame")
    assert address is not None
    assert any(lo <= address < hi for lo, hi in _executable_ranges(data))
    # Other QCalls of the same table resolve to other code; a name that is not a QCall resolves to nothing.
    assert qcalls.qcall_address(data, "SfiInit") not in (None, address)
    assert qcalls.qcall_address(data, "NoSuchQCallAnywhere") is None
    # A name that is only the tail of a longer one is not taken for it.
    assert qcalls.qcall_address(data, "ExceptionStackFrame") is None


@pytest.mark.skipif(not os.path.exists(NET8), reason="the .NET 8 sample app is not built (scripts/setup)")
def test_net8_has_no_append_frame_qcall():
    assert qcalls.find_qcall(NET8, "AppendExceptionStackFrame") is None


def test_not_elf_is_refused():
    with pytest.raises(qcalls.ElfError):
        qcalls.qcall_address(b"MZ\x90\x00" + b"\0" * 100, "AppendExceptionStackFrame")


@pytest.mark.skipif(not os.path.exists(NET8), reason="the .NET 8 sample app is not built (scripts/setup)")
def test_net8_throw_funnel_reference_is_one_lea_in_code():
    with open(NET8, "rb") as f:
        data = f.read()
    found = qcalls.string_references(data, qcalls.THROW_LOG_FORMAT)
    assert len(found) == 1
    assert any(lo <= found[0] < hi for lo, hi in _executable_ranges(data))
    assert qcalls.find_throw_funnel_reference(NET8) == found[0]


@pytest.mark.skipif(not NET10, reason="no .NET 10 shared runtime on this machine")
def test_net10_logs_the_line_twice_so_no_funnel_is_guessed():
    with open(NET10[-1], "rb") as f:
        assert len(qcalls.string_references(f.read(), qcalls.THROW_LOG_FORMAT)) == 2
    assert qcalls.find_throw_funnel_reference(NET10[-1]) is None
    with open(NET10[-1], "rb") as f:
        assert qcalls.string_references(f.read(), b"no such string anywhere\0") == []
