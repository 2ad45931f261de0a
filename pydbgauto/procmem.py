"""Read a stopped Linux process's memory in big chunks, for the core writer.

``process_vm_readv`` copies straight from the target's pages into our buffer (one copy, pages pinned in
batches); ``/proc/<pid>/mem`` goes through a one-page kernel bounce buffer, about half the speed. Both
need the same right (ptrace attach over the target), so the faster is used when the kernel allows it,
and ``/proc/<pid>/mem`` otherwise. Neither goes through the debugger: the bytes are what the kernel
holds, including a debugger's breakpoint ``int3`` (the writer patches those back).
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Optional

PAGE = 4096


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _process_vm_readv() -> Optional["ctypes._CFuncPtr"]:  # type: ignore[name-defined]
    try:
        fn = ctypes.CDLL(None, use_errno=True).process_vm_readv
    except (OSError, AttributeError):
        return None
    fn.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    fn.restype = ctypes.c_ssize_t
    return fn


class MemoryReader:
    """Reads ``[address, address+len(buffer))`` of process ``pid`` into a buffer it owns (one per writer).

    ``read(address, size)`` returns how many bytes from ``address`` landed in ``buffer`` (0 when the first
    page is unreadable; a short count stops before the first unreadable page). ``read_pages`` fills
    unreadable pages with zeros and goes on, so one bad page does not lose the rest of a range.
    """

    def __init__(self, pid: int, size: int) -> None:
        self.pid = pid
        self.buffer = bytearray(size)
        self.view = memoryview(self.buffer)
        self._mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self._vm = _process_vm_readv()
        self._c_buffer = (ctypes.c_char * size).from_buffer(self.buffer)
        self._local = _IoVec(ctypes.addressof(self._c_buffer), 0)
        self._remote = _IoVec(0, 0)
        self.method = "process_vm_readv" if self._vm is not None else "/proc/pid/mem"

    def close(self) -> None:
        self._local.base = None
        del self._c_buffer  # the buffer may be resized or freed again only without this export
        self.view.release()
        os.close(self._mem)

    def __enter__(self) -> "MemoryReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, address: int, size: int, into: int = 0) -> int:
        """Up to ``size`` bytes from ``address`` into ``buffer[into:]``."""
        if self._vm is not None:
            self._local.base = ctypes.addressof(self._c_buffer) + into
            self._local.len = size
            self._remote.base = address
            self._remote.len = size
            got = self._vm(self.pid, ctypes.byref(self._local), 1, ctypes.byref(self._remote), 1, 0)
            if got >= 0:
                return got
            failure = ctypes.get_errno()
            if failure in (errno.ENOSYS, errno.EPERM):  # not allowed here: /proc/<pid>/mem from now on
                self._vm = None
                self.method = "/proc/pid/mem"
            elif failure == errno.ESRCH:
                raise ProcessLookupError(errno.ESRCH, f"the target (pid {self.pid}) is gone")
            else:
                return 0  # EFAULT: the first page cannot be read
        try:
            return os.preadv(self._mem, [self.view[into : into + size]], address)
        except OSError:
            return 0

    def read_pages(self, address: int, size: int, into: int = 0) -> int:
        """Page by page into ``buffer[into:into+size]``, zeros for unreadable pages; the count of pages
        read."""
        readable = 0
        for at in range(0, size, PAGE):
            n = min(PAGE, size - at)
            got = self.read(address + at, n, into + at)
            if got < n:
                self.view[into + at + got : into + at + n] = bytes(n - got)
            readable += got == n
        return readable
