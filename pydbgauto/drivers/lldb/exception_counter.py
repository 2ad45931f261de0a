"""Where a stripped ``libcoreclr.so`` keeps the runtime's own count of exceptions thrown.

Why: with the in-target filter a watch stops only for throws that may match, so it cannot count the throws
it let go by itself. The runtime counts every throw and rethrow, first chance, in one 32-bit global
(``g_exceptionCount``: what ``dotnet-counters`` shows as ``exception-count``), read by the FCall
``Exception.GetExceptionCount``. Reading that word at stops the watch has anyway (its arming and its end)
gives the count of a watch without one more stop and without the diagnostics IPC.

FCalls are named in tables of ``ECFunc`` entries ``{flags, implementation, name, signature}`` whose pointers
are ``R_X86_64_RELATIVE`` relocations, like the QCall table (qcalls.py). So: the slot whose relocation points
at the name ``GetExceptionCount``, the slot before it holds the function, and the function's body (measured
the same in .NET 8.0.31 and 10.0.12) is::

    push rbp; mov rbp, rsp; lea rax, [rip+d]; mov eax, dword [rax]; pop rbp; ret

(or, without a frame pointer, ``mov eax, dword [rip+d]; ret``): the global is at the instruction's end + d.
Any other body, or two different answers, gives None, and no count is reported. Pure over the file's bytes.
"""

from __future__ import annotations

import struct
from typing import Optional, Set

from pydbgauto.drivers.lldb import qcalls

FCALL_NAME = "GetExceptionCount"

# (bytes before the rip displacement, bytes after it): the bodies accepted, and nothing else
_BODIES = (
    (b"\x55\x48\x89\xe5\x48\x8d\x05", b"\x8b\x00\x5d\xc3"),  # lea rax,[rip+d]; mov eax,[rax], rbp frame
    (b"\x8b\x05", b"\xc3"),  # mov eax,[rip+d]; ret
)


def counter_address(data: bytes) -> Optional[int]:
    """The file address of the runtime's exception counter in the shared object ``data``, or None."""
    slots, relocations = qcalls.slots_naming(data, FCALL_NAME)
    found: Set[int] = set()
    for slot in slots:
        function = relocations.get(slot - 8)
        at = qcalls.file_offset(data, function) if function is not None else None
        if function is None or at is None:
            continue
        for before, after in _BODIES:
            end = at + len(before) + 4  # the displacement is relative to the instruction's end
            if data[at : at + len(before)] == before and data[end : end + len(after)] == after:
                found.add(function + len(before) + 4 + struct.unpack_from("<i", data, at + len(before))[0])
    return found.pop() if len(found) == 1 else None


def find_counter(path: str) -> Optional[int]:
    """``counter_address`` of the file at ``path``."""
    with open(path, "rb") as f:
        return counter_address(f.read())
