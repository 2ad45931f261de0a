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


def test_parse_maps_kinds_of_paths_and_flags():
    text = (
        "00400000-00401000 ---p 00000000 00:00 0\n"  # no path at all
        "01000000-01021000 rw-p 00000000 00:00 0          [heap]\n"
        "7f0000000000-7f0000001000 r--s 0000a000 08:01 7  /dev/shm/x (deleted)\n"
        "7ffc0000-7ffc1000 rw-p 00000000 00:00 0          [stack]\n"
    )
    maps = coredump.parse_maps(text)
    assert [m.path for m in maps] == ["", "[heap]", "/dev/shm/x (deleted)", "[stack]"]
    assert [m.file_backed for m in maps] == [False, False, True, False]
    assert [m.flags for m in maps] == [
        0,
        coredump.PF_R | coredump.PF_W,
        coredump.PF_R,
        coredump.PF_R | coredump.PF_W,
    ]
    assert maps[2].offset == 0xA000 and maps[2].end - maps[2].start == 0x1000


def test_parse_maps_skips_blank_and_short_lines():
    short = "\n   \n00400000-00401000 r-xp\n00400000-00401000 r-xp 00000000 08:01\n"  # no inode: not a line
    text = short + "00400000-00401000 r-xp 00000000 08:01 12\n"
    assert coredump.parse_maps(text) == [coredump.Mapping(0x400000, 0x401000, "r-xp", 0, "")]
    assert coredump.parse_maps("") == []


def test_parse_maps_reads_this_process_maps_whole():
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = [line for line in text.splitlines() if line.strip() and not line.endswith("[vsyscall]")]
    maps = coredump.parse_maps(text)
    assert len(maps) == len(lines) > 0
    assert all(m.start < m.end for m in maps)
    assert [m.start for m in maps] == sorted(m.start for m in maps)  # the kernel lists them in order
    assert any(m.path.endswith(("python3", "python3.11")) or "libpython" in m.path for m in maps)
    assert any(m.path == "[stack]" for m in maps)
