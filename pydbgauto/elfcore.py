"""The bytes of an x86-64 Linux ELF core, apart from the memory itself. Pure: no I/O.

What ``dotnet-dump analyze`` (and gdb, lldb, ClrMD) read from a core: the ELF header, one PT_NOTE, one
PT_LOAD per mapping, and the notes: NT_PRSTATUS per thread (registers the debugger hands in),
NT_PRPSINFO, NT_AUXV and NT_FILE (the module list).

Like createdump's cores, it can carry the "special diagnostic info" page readers look for
(``DIAGINFOHEADER`` at 0x7ffffff10000, then an EXCEPTION_RECORD64 naming the captured exception;
format: dotnet/diagnostics SpecialDiagInfo.cs, dotnet/runtime createdump/specialdiaginfo.h), so
``dotnet-dump analyze`` does not warn that runtime memory may be missing. The writer is
:mod:`pydbgauto.coredump`.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Sequence, Tuple

import attr

PAGE = 4096
ET_CORE, EM_X86_64 = 4, 62
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE = 1, 3, 6, 0x46494C45
PN_XNUM = 0xFFFF
ELF_HEADER_SIZE, PHDR_SIZE, SHDR_SIZE = 64, 56, 64
DIAGINFO_ADDRESS = 0x00007FFFFFF10000  # 64-bit Linux, where readers look for it
DIAGINFO_SIGNATURE = b"DIAGINFOHEADER"
DIAGINFO_VERSION = 1
DIAGINFO_RECORD_OFFSET = 0x40  # the EXCEPTION_RECORD64 follows the header in the same page
EXCEPTION_MAXIMUM_PARAMETERS = 15

# user_regs_struct order, which NT_PRSTATUS's pr_reg uses on x86-64.
GP_REGISTERS = (
    "r15",
    "r14",
    "r13",
    "r12",
    "rbp",
    "rbx",
    "r11",
    "r10",
    "r9",
    "r8",
    "rax",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "orig_rax",
    "rip",
    "cs",
    "rflags",
    "rsp",
    "ss",
    "fs_base",
    "gs_base",
    "ds",
    "es",
    "fs",
    "gs",
)


@attr.frozen
class ThreadState:
    tid: int
    registers: Dict[str, int]
    signal: int = 0


@attr.frozen
class Mapping:
    start: int
    end: int
    perms: str
    offset: int
    path: str

    @property
    def flags(self) -> int:
        return (
            (PF_R if "r" in self.perms else 0)
            | (PF_W if "w" in self.perms else 0)
            | (PF_X if "x" in self.perms else 0)
        )

    @property
    def file_backed(self) -> bool:
        return self.path.startswith("/")

    @property
    def readable(self) -> bool:
        return "r" in self.perms


def parse_maps(text: str) -> List[Mapping]:
    """/proc/<pid>/maps lines; the kernel's [vsyscall] page lies outside user space and is left out."""
    mappings = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        path = parts[5] if len(parts) > 5 else ""
        if path == "[vsyscall]":
            continue
        mappings.append(Mapping(start, end, parts[1], int(parts[2], 16), path))
    return mappings


@attr.frozen
class ExceptionRecord:
    """What the diagnostic page's EXCEPTION_RECORD64 says: code, address and up to 15 parameters."""

    code: int
    address: int = 0
    parameters: Tuple[int, ...] = ()


def diaginfo_page(record: Optional[ExceptionRecord]) -> bytes:
    """The special diagnostic info page: header (signature, version, record address) and the record."""
    page = bytearray(PAGE)
    record_address = DIAGINFO_ADDRESS + DIAGINFO_RECORD_OFFSET if record is not None else 0
    struct.pack_into("<16si4xQ", page, 0, DIAGINFO_SIGNATURE, DIAGINFO_VERSION, record_address)
    if record is not None:
        params = tuple(p & 0xFFFFFFFFFFFFFFFF for p in record.parameters[:EXCEPTION_MAXIMUM_PARAMETERS])
        struct.pack_into(
            "<IIQQI4x15Q",
            page,
            DIAGINFO_RECORD_OFFSET,
            record.code & 0xFFFFFFFF,
            0,  # flags
            0,  # no chained record
            record.address & 0xFFFFFFFFFFFFFFFF,
            len(params),
            *(params + (0,) * (EXCEPTION_MAXIMUM_PARAMETERS - len(params))),
        )
    return bytes(page)


def diaginfo_fits(mappings: Sequence[Mapping]) -> bool:
    """False when the process itself maps the diagnostic page's address: leave it out rather than lie."""
    return not any(m.start < DIAGINFO_ADDRESS + PAGE and DIAGINFO_ADDRESS < m.end for m in mappings)


@attr.frozen
class ProcessInfo:
    """What NT_PRPSINFO and NT_PRSTATUS say about the process (from /proc/<pid>/stat, cmdline, owner)."""

    pid: int
    ppid: int
    pgrp: int
    sid: int
    comm: str
    cmdline: bytes
    uid: int
    gid: int


def notes(
    threads: Sequence[ThreadState], process: ProcessInfo, auxv: bytes, mappings: Sequence[Mapping]
) -> bytes:
    """The PT_NOTE contents: NT_PRSTATUS per thread (the first is the one readers select), NT_PRPSINFO,
    NT_AUXV, NT_FILE."""
    p = process
    out = b"".join(_note(b"CORE", NT_PRSTATUS, _prstatus(t, p.ppid, p.pgrp, p.sid)) for t in threads)
    out += _note(b"CORE", NT_PRPSINFO, _prpsinfo(p))
    out += _note(b"CORE", NT_AUXV, auxv)
    out += _note(b"CORE", NT_FILE, _nt_file(mappings))
    return out


@attr.frozen
class Layout:
    """Where everything goes in the file: the memory of ``segments[i]`` at ``offsets[i]``."""

    phnum: int
    notes_offset: int
    data_offset: int
    offsets: Tuple[int, ...]  # file offset of each mapping's bytes (those without bytes take none)
    diaginfo_offset: int  # -1 without the page
    end: int  # the file's size


def layout(mappings: Sequence[Mapping], notes_size: int, with_diaginfo: bool) -> Layout:
    """Readable mappings get their whole range in the file (unreadable pages stay zero, so a reader sees
    the full range); the others are PT_LOADs with no bytes, as the kernel writes them."""
    phnum = 1 + len(mappings) + (1 if with_diaginfo else 0)
    extended = phnum >= PN_XNUM
    notes_offset = ELF_HEADER_SIZE + phnum * PHDR_SIZE + (SHDR_SIZE if extended else 0)
    data_offset = _align(notes_offset + notes_size, PAGE)
    offsets = []
    offset = data_offset
    for m in mappings:
        offsets.append(offset)
        offset += m.end - m.start if m.readable else 0
    diag = offset if with_diaginfo else -1
    end = offset + (PAGE if with_diaginfo else 0)
    return Layout(phnum, notes_offset, data_offset, tuple(offsets), diag, end)


def headers(mappings: Sequence[Mapping], where: Layout, notes_size: int) -> bytes:
    """ELF header, program headers (PT_NOTE first) and, past 65534 of them, the section header whose
    sh_info carries the real count; the notes follow at ``where.notes_offset``."""
    extended = where.phnum >= PN_XNUM
    phoff = ELF_HEADER_SIZE
    shoff = phoff + where.phnum * PHDR_SIZE if extended else 0
    out = [_elf_header(phoff, PN_XNUM if extended else where.phnum, shoff, 1 if extended else 0)]
    out.append(struct.pack("<IIQQQQQQ", PT_NOTE, 0, where.notes_offset, 0, 0, notes_size, 0, 4))
    for m, offset in zip(mappings, where.offsets):
        size = m.end - m.start
        filesz = size if m.readable else 0
        out.append(struct.pack("<IIQQQQQQ", PT_LOAD, m.flags, offset, m.start, 0, filesz, size, PAGE))
    if where.diaginfo_offset >= 0:
        out.append(
            struct.pack(
                "<IIQQQQQQ", PT_LOAD, PF_R, where.diaginfo_offset, DIAGINFO_ADDRESS, 0, PAGE, PAGE, PAGE
            )
        )
    if extended:  # sh_info of section 0 carries the real program header count
        out.append(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, where.phnum, 0, 0))
    return b"".join(out)


def _note(name: bytes, note_type: int, desc: bytes) -> bytes:
    name_z = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name_z), len(desc), note_type) + pad(name_z) + pad(desc)


def _prstatus(thread: ThreadState, ppid: int, pgrp: int, sid: int) -> bytes:
    regs = struct.pack("<27Q", *(thread.registers.get(n, 0) & 0xFFFFFFFFFFFFFFFF for n in GP_REGISTERS))
    head = struct.pack("<iiih2xQQiiii", thread.signal, 0, 0, thread.signal, 0, 0, thread.tid, ppid, pgrp, sid)
    times = b"\0" * 64
    return head + times + regs + struct.pack("<i4x", 0)  # pr_fpvalid = 0


def _prpsinfo(p: ProcessInfo) -> bytes:
    fname = p.comm.encode()[:15].ljust(16, b"\0")
    psargs = p.cmdline.replace(b"\0", b" ").strip()[:79].ljust(80, b"\0")
    head = struct.pack(
        "<cccc4xQIIiiii", b"t", b"t", b"\0", b"\0", 0, p.uid, p.gid, p.pid, p.ppid, p.pgrp, p.sid
    )
    return head + fname + psargs


def _nt_file(mappings: Sequence[Mapping]) -> bytes:
    files = [m for m in mappings if m.file_backed]
    body = struct.pack("<QQ", len(files), PAGE)
    body += b"".join(struct.pack("<QQQ", m.start, m.end, m.offset // PAGE) for m in files)
    body += b"".join(m.path.replace(" (deleted)", "").encode() + b"\0" for m in files)
    return body


def _elf_header(phoff: int, phnum: int, shoff: int, shnum: int) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    return ident + struct.pack(
        "<HHIQQQIHHHHHH",
        ET_CORE,
        EM_X86_64,
        1,
        0,
        phoff,
        shoff,
        0,
        ELF_HEADER_SIZE,
        PHDR_SIZE,
        phnum,
        SHDR_SIZE if shnum else 0,
        shnum,
        0,
    )


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment
