"""Write an ELF core file of a stopped Linux x86-64 process, the kind ``dotnet-dump analyze`` reads.

lldb saves only minidumps on Linux, which dotnet-dump cannot open, and createdump or gdb cannot attach
while lldb traces the process. So pydbgauto writes the core itself, while the target stays stopped
under lldb: memory from ``/proc/<pid>/mem`` (every mapping; the readable ones with their bytes, a
superset of what ``coredump_filter`` 0x3f keeps), one NT_PRSTATUS per thread from registers the debugger
hands in, NT_PRPSINFO, NT_AUXV and NT_FILE (module list for readers such as ClrMD).

Like createdump's cores, it carries the "special diagnostic info" page readers look for
(``DIAGINFOHEADER`` at 0x7ffffff10000, then an EXCEPTION_RECORD64 naming the captured exception;
format: dotnet/diagnostics SpecialDiagInfo.cs, dotnet/runtime createdump/specialdiaginfo.h), so
``dotnet-dump analyze`` does not warn that runtime memory may be missing. Bytes the debugger changed
(breakpoint ``int3``s) are written with their original values, handed in as ``patches``.

The file is created exclusively with mode 0600 and fsync'ed; renaming it into place is the caller's job.
All-zero chunks are left as holes, so the file is sparse on disk.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import attr

PAGE = 4096
CHUNK = 1 << 20
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


def _note(name: bytes, note_type: int, desc: bytes) -> bytes:
    name_z = name + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name_z), len(desc), note_type) + pad(name_z) + pad(desc)


def _prstatus(thread: ThreadState, pid: int, ppid: int, pgrp: int, sid: int) -> bytes:
    regs = struct.pack("<27Q", *(thread.registers.get(n, 0) & 0xFFFFFFFFFFFFFFFF for n in GP_REGISTERS))
    head = struct.pack("<iiih2xQQiiii", thread.signal, 0, 0, thread.signal, 0, 0, thread.tid, ppid, pgrp, sid)
    times = b"\0" * 64
    return head + times + regs + struct.pack("<i4x", 0)  # pr_fpvalid = 0


def _prpsinfo(
    pid: int, ppid: int, pgrp: int, sid: int, comm: str, cmdline: bytes, uid: int, gid: int
) -> bytes:
    fname = comm.encode()[:15].ljust(16, b"\0")
    psargs = cmdline.replace(b"\0", b" ").strip()[:79].ljust(80, b"\0")
    return (
        struct.pack("<cccc4xQIIiiii", b"t", b"t", b"\0", b"\0", 0, uid, gid, pid, ppid, pgrp, sid)
        + fname
        + psargs
    )


def _nt_file(mappings: Sequence[Mapping]) -> bytes:
    files = [m for m in mappings if m.file_backed]
    body = struct.pack("<QQ", len(files), PAGE)
    body += b"".join(struct.pack("<QQQ", m.start, m.end, m.offset // PAGE) for m in files)
    body += b"".join(m.path.replace(" (deleted)", "").encode() + b"\0" for m in files)
    return body


def _proc_stat(pid: int) -> Tuple[str, int, int, int]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode(errors="replace")
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[1]), int(fields[2]), int(fields[3])  # comm, ppid, pgrp, session


def write_core(
    path: str,
    pid: int,
    threads: Sequence[ThreadState],
    *,
    exception: Optional[ExceptionRecord] = None,
    patches: Sequence[Tuple[int, bytes]] = (),
) -> Dict[str, object]:
    """Write the core of stopped process ``pid`` to the new file ``path``; return what was written.

    ``exception`` goes into the diagnostic info page; ``patches`` are (address, original bytes) to write
    over what ``/proc/<pid>/mem`` shows (the debugger's breakpoint bytes).
    """
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as f:
        mappings = parse_maps(f.read())
    diag_page = diaginfo_page(exception)
    if any(m.start < DIAGINFO_ADDRESS + PAGE and DIAGINFO_ADDRESS < m.end for m in mappings):
        diag_page = b""  # the process itself uses that address: leave the page out rather than lie
    comm, ppid, pgrp, sid = _proc_stat(pid)
    with open(f"/proc/{pid}/auxv", "rb") as f:
        auxv = f.read()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    status = os.stat(f"/proc/{pid}")

    notes = b"".join(_note(b"CORE", NT_PRSTATUS, _prstatus(t, pid, ppid, pgrp, sid)) for t in threads)
    notes += _note(
        b"CORE", NT_PRPSINFO, _prpsinfo(pid, ppid, pgrp, sid, comm, cmdline, status.st_uid, status.st_gid)
    )
    notes += _note(b"CORE", NT_AUXV, auxv)
    notes += _note(b"CORE", NT_FILE, _nt_file(mappings))

    phnum = 1 + len(mappings) + (1 if diag_page else 0)
    extended = phnum >= PN_XNUM
    phoff = ELF_HEADER_SIZE
    shoff = phoff + phnum * PHDR_SIZE if extended else 0
    notes_offset = phoff + phnum * PHDR_SIZE + (SHDR_SIZE if extended else 0)
    data_offset = _align(notes_offset + len(notes), PAGE)

    fd, named = _create(path)
    written = 0
    end = 0
    unreadable: List[str] = []
    try:
        with os.fdopen(fd, "wb") as out, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            headers: List[bytes] = []
            offset = data_offset
            out.seek(data_offset)
            for m in mappings:
                size = m.end - m.start
                filesz = 0
                if "r" in m.perms:
                    filesz, bytes_out = _copy(mem, out, m.start, size)
                    written += bytes_out
                    if filesz < size:
                        unreadable.append(f"{m.start:x}-{m.end:x} {m.path}".strip())
                        filesz = size  # the unreadable rest stays zero: the reader sees the full range
                        out.seek(offset + size)
                headers.append(
                    struct.pack("<IIQQQQQQ", PT_LOAD, m.flags, offset, m.start, 0, filesz, size, PAGE)
                )
                _patch(out, offset, m.start, filesz, patches)
                offset += filesz
            if diag_page:
                out.seek(offset)
                out.write(diag_page)
                headers.append(
                    struct.pack("<IIQQQQQQ", PT_LOAD, PF_R, offset, DIAGINFO_ADDRESS, 0, PAGE, PAGE, PAGE)
                )
                offset += PAGE
            end = offset
            out.seek(0)
            out.write(_elf_header(phoff, PN_XNUM if extended else phnum, shoff, 1 if extended else 0))
            out.write(struct.pack("<IIQQQQQQ", PT_NOTE, 0, notes_offset, 0, 0, len(notes), 0, 4))
            out.write(b"".join(headers))
            if extended:  # sh_info of section 0 carries the real program header count
                out.write(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, phnum, 0, 0))
            out.write(notes)
            out.truncate(end)
            out.flush()
            os.fsync(out.fileno())
            _check_still_wanted(pid)
            if not named:  # give the finished core its name; until now it had none
                _link_fd(out.fileno(), path)
                named = True
    except BaseException as e:
        if named:
            try:
                os.unlink(path)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OSError(
                e.errno,
                f"{os.strerror(e.errno)} after {end or written} bytes: the dump folder cannot hold the core; "
                "the incomplete core was removed",
            ) from e
        raise
    return {
        "path": path,
        "size": end,
        "bytes_copied": written,
        "segments": len(mappings),
        "threads": len(threads),
        "unreadable": unreadable,
        "diaginfo": bool(diag_page),
        "patched": len(patches),
    }


def _patch(  # type: ignore[no-untyped-def]
    out, file_offset: int, start: int, size: int, patches: Sequence[Tuple[int, bytes]]
) -> None:
    """Write the original bytes of patched addresses inside [start, start+size) at their file place."""
    here = out.tell()
    for address, original in patches:
        if start <= address and address + len(original) <= start + size:
            out.seek(file_offset + address - start)
            out.write(original)
    out.seek(here)


def _create(path: str) -> Tuple[int, bool]:
    """A new file for the core: an unnamed O_TMPFILE in ``path``'s folder when the filesystem has them
    (it gets its name only once complete, so a writer that dies leaves nothing), else ``path`` itself
    (O_EXCL). Returns (fd, named). Mode 0600 whatever the umask."""
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile:
        try:
            fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", flags | tmpfile, 0o600)
            os.fchmod(fd, 0o600)
            if os.path.lexists(path):
                os.close(fd)
                raise FileExistsError(errno.EEXIST, "the core's name is taken", path)
            return fd, False
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                raise
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.fchmod(fd, 0o600)
    return fd, True


def _link_fd(fd: int, path: str) -> None:
    """Give the unnamed file ``fd`` the name ``path`` (linkat with AT_SYMLINK_FOLLOW on /proc/self/fd;
    a dir fd makes CPython use linkat, plain link() would not follow the magic link)."""
    folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(
            f"/proc/self/fd/{fd}",
            os.path.basename(path),
            src_dir_fd=folder,
            dst_dir_fd=folder,
            follow_symlinks=True,
        )
    finally:
        os.close(folder)


def _check_still_wanted(pid: int) -> None:
    """Before a core is named: the target must still be alive (else the core holds zeros where its
    memory was) and, inside lldb, the pydbgauto process that asked for it must still be there (else
    nobody would remove or use it)."""
    try:
        state = _proc_state(pid)
    except OSError:
        state = "gone"
    if state in ("Z", "X", "gone"):
        raise RuntimeError(f"the target (pid {pid}) died while its core was written: the core was discarded")
    owner = os.environ.get("PYDBGAUTO_OWNER_PID")
    if owner and owner.isdigit() and os.getppid() != int(owner):
        raise RuntimeError(
            f"pydbgauto (pid {owner}) ended while the core was written: the core was discarded"
        )


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode(errors="replace")
    return raw[raw.rindex(")") + 2 :].split()[0]


def _copy(mem, out, start: int, size: int) -> Tuple[int, int]:  # type: ignore[no-untyped-def]
    """Copy [start, start+size) from the process to the file at its current position.

    Returns (bytes of the range covered, bytes actually written); a range that stops being readable
    ends the copy early. All-zero chunks become holes.
    """
    done = 0
    written = 0
    while done < size:
        want = min(CHUNK, size - done)
        try:
            mem.seek(start + done)
            chunk = mem.read(want)
        except OSError:
            chunk = b""
        if not chunk:
            # Retry page by page: a single bad page must not lose the rest of the mapping.
            chunk = _read_pages(mem, start + done, want)
            if chunk is None:
                return done, written
        if chunk.count(0) == len(chunk):
            out.seek(len(chunk), os.SEEK_CUR)
        else:
            out.write(chunk)
            written += len(chunk)
        done += len(chunk)
    return done, written


def _read_pages(mem, start: int, size: int) -> Optional[bytes]:  # type: ignore[no-untyped-def]
    """The pages of a range one by one, zeros for unreadable ones; None when no page was readable."""
    pages = []
    readable = 0
    for page in range(start, start + size, PAGE):
        try:
            mem.seek(page)
            data = mem.read(PAGE)
        except OSError:
            data = b""
        readable += len(data) == PAGE
        pages.append(data if len(data) == PAGE else b"\0" * PAGE)
    return b"".join(pages) if readable else None


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
