"""Write an ELF core file of a stopped Linux x86-64 process, the kind ``dotnet-dump analyze`` reads.

lldb saves only minidumps on Linux, which dotnet-dump cannot open, and createdump or gdb cannot attach
while lldb traces the process. So pydbgauto writes the core itself, while the target stays stopped
under lldb: every mapping of ``/proc/<pid>/maps`` (the readable ones with their bytes, a superset of
what createdump ``--full`` and ``coredump_filter`` 0x3f keep), the notes and headers of
:mod:`pydbgauto.elfcore`, and the special diagnostic info page. Bytes the debugger changed (breakpoint
``int3``s) are written with their original values, handed in as ``patches``.

Fast because the target waits for it (docs/linux.md "The full dump" has the figures): memory comes in
1 MiB chunks into one reused buffer (:mod:`pydbgauto.procmem`, ``process_vm_readv``), all-zero 64 KiB
blocks are left as holes (about half a .NET process's mappings: the file is sparse on disk and the disk
writes only the rest), every write names its offset (no seeks), and the kernel is asked to start
writing to disk every 8 MiB, so the closing fsync waits for little more than the last blocks.

The file is created with mode 0600 as an unnamed O_TMPFILE where the filesystem has them, fsync'ed,
and given its name (``path``, a temporary one: renaming it into place is the caller's job) only when
complete and the target still alive; a failure leaves nothing.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from pydbgauto.elfcore import (  # noqa: F401  (re-exported: the agent and tests use these names)
    DIAGINFO_ADDRESS,
    DIAGINFO_RECORD_OFFSET,
    GP_REGISTERS,
    PAGE,
    PF_R,
    PF_W,
    PF_X,
    ExceptionRecord,
    Mapping,
    ProcessInfo,
    ThreadState,
    diaginfo_fits,
    diaginfo_page,
    headers,
    layout,
    notes,
    parse_maps,
)
from pydbgauto.procmem import MemoryReader

CHUNK = 1 << 20  # one read from the target
BLOCK = 64 << 10  # the unit of holes: smaller finds few more zeros and costs more writes
WRITEBACK = 8 << 20  # start the disk writing after this many bytes (sync_file_range)
_ZERO_CHUNK = bytes(CHUNK)
_ZERO_BLOCK = bytes(BLOCK)


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
    over what the kernel shows (the debugger's breakpoint bytes).
    """
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as f:
        mappings = parse_maps(f.read())
    with_diaginfo = diaginfo_fits(mappings)
    process = _process_info(pid)
    with open(f"/proc/{pid}/auxv", "rb") as f:
        auxv = f.read()
    note_bytes = notes(threads, process, auxv, mappings)
    where = layout(mappings, len(note_bytes), with_diaginfo)

    fd, named = _create(path)
    copy: Optional[_Copy] = None
    method = ""
    try:
        with MemoryReader(pid, CHUNK) as reader:
            copy = _Copy(fd, reader, sorted(patches))
            try:
                for m, offset in zip(mappings, where.offsets):
                    if m.readable:
                        copy.mapping(m, offset)
            except ProcessLookupError:
                raise _died(pid) from None
            method = reader.method
        os.pwrite(fd, headers(mappings, where, len(note_bytes)) + note_bytes, 0)
        if with_diaginfo:
            os.pwrite(fd, diaginfo_page(exception), where.diaginfo_offset)
        os.ftruncate(fd, where.end)  # the holes at the end, if any
        os.fsync(fd)
        _check_still_wanted(pid)
        if not named:  # give the finished core its name; until now it had none
            _link_fd(fd, path)
            named = True
    except BaseException as e:
        if named:
            try:
                os.unlink(path)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            done = copy.written if copy is not None else 0
            raise OSError(
                e.errno,
                f"{os.strerror(e.errno)} after {done} bytes: the dump folder cannot hold the core; "
                "the incomplete core was removed",
            ) from e
        raise
    finally:
        os.close(fd)
    return {
        "path": path,
        "size": where.end,
        "bytes_copied": copy.written,
        "segments": len(mappings),
        "threads": len(threads),
        "unreadable": copy.unreadable,
        "diaginfo": with_diaginfo,
        "patched": copy.patched,
        "read_with": method,
    }


class _Copy:
    """Copies mappings from the target into the core at their file offsets; zero blocks stay holes."""

    def __init__(self, fd: int, reader: MemoryReader, patches: Sequence[Tuple[int, bytes]]) -> None:
        self.fd = fd
        self.reader = reader
        self.patches = patches
        self.written = 0  # bytes written (holes not counted)
        self.patched = 0
        self.unreadable: List[str] = []
        self._unflushed = 0
        self._writeback = _writeback_starter()

    def mapping(self, m: Mapping, offset: int) -> None:
        """Copy one readable mapping. Unreadable pages stay zero; a chunk with no readable page ends the
        mapping (the rest stays zero too), as does the target's memory ending early."""
        size = m.end - m.start
        done = 0
        complete = True
        while done < size:
            want = min(CHUNK, size - done)
            address = m.start + done
            got = self.reader.read(address, want)
            if got < want:  # a bad page inside: page by page from there, zeros for the bad ones
                complete = False
                if self.reader.read_pages(address + got, want - got, into=got) == 0 and got == 0:
                    break
            self._patch(address, want)
            self._write(want, offset + done)
            done += want
        if not complete:
            self.unreadable.append(f"{m.start:x}-{m.end:x} {m.path}".strip())

    def _patch(self, address: int, size: int) -> None:
        """The original bytes of the debugger's breakpoints inside [address, address+size)."""
        buffer = self.reader.buffer
        for at, original in self.patches:
            lo, hi = max(at, address), min(at + len(original), address + size)
            if lo < hi:
                buffer[lo - address : hi - address] = original[lo - at : hi - at]
                self.patched += 1

    def _write(self, size: int, offset: int) -> None:
        """``buffer[:size]`` to ``offset``: runs of non-zero blocks as single writes, zero blocks skipped."""
        buffer, view = self.reader.buffer, self.reader.view
        if size == CHUNK and buffer == _ZERO_CHUNK:
            return
        start = -1  # first block of the pending run
        for at in range(0, size, BLOCK):
            end = min(at + BLOCK, size)
            zero = buffer[at:end] == _ZERO_BLOCK[: end - at]
            if zero and start >= 0:
                self._put(view[start:at], offset + start)
                start = -1
            elif not zero and start < 0:
                start = at
        if start >= 0:
            self._put(view[start:size], offset + start)

    def _put(self, data: memoryview, offset: int) -> None:
        while len(data):
            n = os.pwrite(self.fd, data, offset)
            data, offset = data[n:], offset + n
            self.written += n
            self._unflushed += n
        if self._unflushed >= WRITEBACK:
            self._writeback(self.fd)
            self._unflushed = 0


def _writeback_starter() -> Callable[[int], None]:
    """``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: start writing the dirty pages to disk, do not
    wait; a no-op where libc lacks it."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda fd: None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int

    def start(fd: int) -> None:
        fn(fd, 0, 0, 2)  # a failure only means fsync has more to do

    return start


def _process_info(pid: int) -> ProcessInfo:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode(errors="replace")
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read()
    owner = os.stat(f"/proc/{pid}")
    return ProcessInfo(
        pid, int(fields[1]), int(fields[2]), int(fields[3]), comm, cmdline, owner.st_uid, owner.st_gid
    )


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
        raise _died(pid)
    owner = os.environ.get("PYDBGAUTO_OWNER_PID")
    if owner and owner.isdigit() and os.getppid() != int(owner):
        raise RuntimeError(
            f"pydbgauto (pid {owner}) ended while the core was written: the core was discarded"
        )


def _died(pid: int) -> RuntimeError:
    return RuntimeError(f"the target (pid {pid}) died while its core was written: the core was discarded")


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode(errors="replace")
    return raw[raw.rindex(")") + 2 :].split()[0]
