"""The pure parts of the ELF core writer: /proc maps parsing and the special diagnostic info page."""

from __future__ import annotations

import struct

from pydbgauto import coredump


def test_parse_maps_skips_vsyscall_and_keeps_paths():
    text = (
        "55d4c0000000-55d4c0001000 r-xp 00002000 08:01 42  /usr/bin/thing with space\n"
        "7ffd1000-7ffd2000 rw-p 00000000 00:00 0 \n"
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n"
    )
    maps = coredump.parse_maps(text)
    assert [(m.start, m.end, m.perms, m.offset) for m in maps] == [
        (0x55D4C0000000, 0x55D4C0001000, "r-xp", 0x2000),
        (0x7FFD1000, 0x7FFD2000, "rw-p", 0),
    ]
    assert maps[0].path == "/usr/bin/thing with space" and maps[0].file_backed
    assert maps[0].flags == coredump.PF_R | coredump.PF_X and not maps[1].file_backed


def test_diaginfo_page_layout_is_what_readers_expect():
    record = coredump.ExceptionRecord(code=0xE0434352, address=0x7F0012345678, parameters=(0x7F00AA, 0x1234))
    page = coredump.diaginfo_page(record)
    assert len(page) == coredump.PAGE
    signature, version, record_address = struct.unpack_from("<16si4xQ", page, 0)
    assert signature.rstrip(b"\0") == b"DIAGINFOHEADER" and version == 1
    assert record_address == coredump.DIAGINFO_ADDRESS + coredump.DIAGINFO_RECORD_OFFSET
    at = record_address - coredump.DIAGINFO_ADDRESS
    code, flags, chained, address, count = struct.unpack_from("<IIQQI", page, at)
    assert (code, flags, chained, address, count) == (0xE0434352, 0, 0, 0x7F0012345678, 2)
    params = struct.unpack_from("<15Q", page, at + 32)
    assert params[:3] == (0x7F00AA, 0x1234, 0)
    # EXCEPTION_RECORD64 is 152 bytes and fits in the page after the header.
    assert at + 152 <= coredump.PAGE


def test_diaginfo_page_without_an_exception_has_no_record():
    page = coredump.diaginfo_page(None)
    assert page.startswith(b"DIAGINFOHEADER")
    assert struct.unpack_from("<Q", page, 24)[0] == 0 and page[32:].count(0) == len(page) - 32
