"""The ELF core writer: its pure parts (/proc maps parsing, the special diagnostic info page, the layout)
and the writer on a real stopped process (memory, holes, patches, both ways of reading)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from typing import Iterator, List, Tuple

import pytest

from pydbgauto import coredump, elfcore, processes, procmem


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


def test_layout_and_headers_with_more_program_headers_than_elf_counts():
    """Past 65534 program headers e_phnum says PN_XNUM and section 0's sh_info holds the real count."""
    mappings = [
        elfcore.Mapping(0x10000 + i * 0x2000, 0x11000 + i * 0x2000, "rw-p", 0, "") for i in range(70000)
    ]
    mappings[1] = elfcore.Mapping(mappings[1].start, mappings[1].end, "---p", 0, "")  # no bytes in the file
    where = elfcore.layout(mappings, 100, with_diaginfo=True)
    out = elfcore.headers(mappings, where, 100)
    assert len(out) == where.notes_offset and where.phnum == 70002
    phnum, shnum = struct.unpack_from("<H", out, 56)[0], struct.unpack_from("<H", out, 60)[0]
    shoff = struct.unpack_from("<Q", out, 40)[0]
    assert (phnum, shnum) == (elfcore.PN_XNUM, 1) and struct.unpack_from("<I", out, shoff + 44)[0] == 70002
    assert where.offsets[0] == where.data_offset and where.data_offset % elfcore.PAGE == 0
    assert where.offsets[2] == where.offsets[1] == where.data_offset + 0x1000  # the ---p one takes none
    assert where.diaginfo_offset == where.end - elfcore.PAGE == where.data_offset + 69999 * 0x1000


# ----- the writer, on a real stopped process ------------------------------------------------------------

# A child that maps a 3 MiB file of its own (a mapping that never merges with a neighbour): its first
# 64 KiB block all zero, markers in the second and at the end of the second MiB, the third MiB all zero. It
# prints the mapping's address and stops itself, as a debugger's target would be stopped.
_CHILD = r"""
import mmap, ctypes, os, signal, sys
with open(sys.argv[1], "w+b") as f:
    f.truncate(3 << 20)
    m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE)
m[64 << 10 : (64 << 10) + 8] = b"PDAMARK1"
m[(2 << 20) - 8 : 2 << 20] = b"PDAMARK2"
print(ctypes.addressof(ctypes.c_char.from_buffer(m)), flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
sys.stdin.read()
"""


@pytest.fixture
def stopped_child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[int, int]]:
    """(pid, address of the 3 MiB mapping) of a real process stopped by SIGSTOP."""
    backing = str(tmp_path_factory.mktemp("child") / "mapped.bin")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, backing], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        address = int(child.stdout.readline())
        deadline = time.monotonic() + 10
        while processes.state_of(child.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        yield child.pid, address
    finally:
        child.kill()
        child.wait()


def _loads(core: bytes) -> List[Tuple[int, int, int, int]]:
    """(vaddr, offset, filesz, memsz) of each PT_LOAD of an ELF core, as a reader takes them."""
    (phoff,) = struct.unpack_from("<Q", core, 32)
    (phnum,) = struct.unpack_from("<H", core, 56)
    out = []
    for i in range(phnum):
        p_type, _, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from("<IIQQQQQQ", core, phoff + 56 * i)
        if p_type == elfcore.PT_LOAD:
            out.append((vaddr, offset, filesz, memsz))
    return out


def _memory(core: bytes, address: int, size: int) -> bytes:
    for vaddr, offset, filesz, _ in _loads(core):
        if vaddr <= address and address + size <= vaddr + filesz:
            return core[offset + address - vaddr : offset + address - vaddr + size]
    raise AssertionError(f"{address:x} is not in the core")


@pytest.mark.parametrize("reader", ["process_vm_readv", "/proc/pid/mem"])
def test_written_core_holds_the_memory_with_zero_blocks_as_holes(
    stopped_child, tmp_path, reader, monkeypatch
):
    pid, address = stopped_child
    if reader == "/proc/pid/mem":  # the fallback where process_vm_readv is not allowed
        monkeypatch.setattr(procmem, "_process_vm_readv", lambda: None)
    patch = (address + (64 << 10) + 4, b"XY")  # the debugger's bytes there were not the process's
    path = str(tmp_path / "child.core")
    info = coredump.write_core(path, pid, [coredump.ThreadState(pid, {"rip": 0x1234})], patches=[patch])
    assert info["read_with"] == reader and info["patched"] == 1
    assert os.listdir(tmp_path) == ["child.core"] and os.stat(path).st_mode & 0o777 == 0o600
    with open(path, "rb") as f:
        core = f.read()
    assert len(core) == info["size"] and core[:4] == b"\x7fELF"
    assert _memory(core, address + (64 << 10), 8) == b"PDAMXYK1"  # the marker, patched
    assert _memory(core, address + (2 << 20) - 8, 8) == b"PDAMARK2"
    assert _memory(core, address, 64 << 10) == bytes(64 << 10)
    # The mapping's zero blocks are holes: the file's data skips them.
    _, offset, filesz, _ = next(x for x in _loads(core) if x[0] == address)
    assert filesz == 3 << 20
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.lseek(fd, offset, os.SEEK_DATA) == offset + (64 << 10)
        assert os.lseek(fd, offset + (64 << 10), os.SEEK_HOLE) == offset + (128 << 10)
        assert os.lseek(fd, offset + (2 << 20) - 8, os.SEEK_HOLE) == offset + (2 << 20)
        assert os.lseek(fd, offset + (2 << 20), os.SEEK_DATA) >= offset + (3 << 20)
    finally:
        os.close(fd)


def test_the_same_memory_whichever_reader(stopped_child, tmp_path, monkeypatch):
    pid, _ = stopped_child
    fast = str(tmp_path / "fast.core")
    coredump.write_core(fast, pid, [])
    monkeypatch.setattr(procmem, "_process_vm_readv", lambda: None)
    slow = str(tmp_path / "slow.core")
    coredump.write_core(slow, pid, [])
    with open(fast, "rb") as a, open(slow, "rb") as b:
        assert a.read() == b.read()
