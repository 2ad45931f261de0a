"""The stub's question: a throw the in-target filter cannot rule out asks the agent for a verdict over a
unix socket instead of stopping the process (pure: the machine code and the record; no lldb, no process).

Proved first (docs/linux-fast-filter.md, "A verdict without a stop"): a socket round trip answered by a
thread of lldb's Python costs a throw ~1/50 of a SIGURG stop, and with ``MSG_NOSIGNAL`` the asking thread
survives the debugger's death (end of file or ``EPIPE`` at once). The asking thread, under a lock of the
page's own, copies what a predicate reads (thread id, object, MethodTable, HResult, the message's length
and first ``CHARS`` UTF-16 units) into the page's record while nothing can move the object (the thread is
in the runtime's throw path), connects a socket of its own to the agent's, sends the record and blocks for
one byte: ``n`` lets the throw go on, anything else takes the trap (a stop: the agent decides there, as
without the question). No listener, end of file or an error also takes the trap and turns the question
off (ON = 0), so no thread asks again. The socket is closed before the thread goes on, so nothing runs in
the target to set the question up and no fd of ours stays in it. The record is sent whole
(``REQUEST_SIZE`` bytes; ``SOCK_SEQPACKET`` keeps it one message).
A thread between ``locked`` and ``ask_end`` may be inside ``sendto``/``recvfrom``: it must run out of the
stub before the stub is removed (docs/linux-fast-filter.md says why).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

PAGE = 4096
# The page: ON (1: ask; 0: off, or the one who answers is gone), the lock, counters, the exception's field
# offsets, the verdict byte, the target's pid (a forked child, which shares the page's copy but not the
# agent, never asks), this question's socket, the address's length, the runtime's code range [LO, HI)
# (libcoreclr's: the return addresses are followed while they are in it), the address, then the record.
ON, LOCK, ASKED, PASSED, MESSAGE_AT, HRESULT_AT, VERDICT, PID, FD, ADDR_LEN, RUNTIME_LO, RUNTIME_HI = (
    8 * i for i in range(12)
)
ADDR, RECORD = 0x80, 0x100
ADDR_SIZE = 110  # sockaddr_un: the family, 108 bytes of path (a leading NUL: Linux's abstract names)
# The record: thread id, object, MethodTable, HResult (i32), message length (i32; -1: no message), how
# many return addresses follow (the frame-pointer chain from the funnel's entry: throw_sites.py), text
R_TID, R_OBJECT, R_MT, R_HRESULT, R_LENGTH, R_SITE_COUNT, R_SITES = 0, 8, 16, 24, 28, 32, 40
SITES = 8  # return addresses at most: the runtime's frames and the first one out of it (the thrower's)
FRAME_REACH = 64 << 10  # a frame pointer is followed only this far above rsp (and only upwards)
R_CHARS = R_SITES + 8 * SITES
CHARS = (PAGE - RECORD - R_CHARS) // 2  # UTF-16 units of the message sent; the length says if there were more
REQUEST_SIZE = R_CHARS + 2 * CHARS
SYS_CLOSE, SYS_SCHED_YIELD, SYS_GETPID, SYS_SOCKET, SYS_CONNECT = 3, 24, 39, 41, 42
SYS_SENDTO, SYS_RECVFROM, SYS_GETTID = 44, 45, 186
AF_UNIX, SOCK_SEQPACKET, SOCK_CLOEXEC, MSG_NOSIGNAL = 1, 5, 0x80000, 0x4000
EINTR = 4
JB, JAE, JE, JNE, JLE, JBE, JS = 0x82, 0x83, 0x84, 0x85, 0x8E, 0x86, 0x88


@dataclass(frozen=True)
class Request:
    """What the asking thread sent."""

    thread_id: int
    object: int
    method_table: int
    hresult: int  # unsigned
    message: Optional[str]  # None: the exception has no message (as exception_fields.py decodes it)
    truncated: bool  # the message has more than CHARS units: only its start was sent
    # [rsp], then [rbp+8] up the frame-pointer chain while the last was in the runtime (throw_sites.py)
    return_addresses: Tuple[int, ...] = ()

    @classmethod
    def parse(cls, record: bytes) -> "Request":
        # the HResult unsigned, as pe shows it and hresult() predicates hold it (exception_fields.py too)
        tid, obj, mt, hresult, length, count = struct.unpack_from("<QQQIiI", record, 0)
        message = None
        if length >= 0:
            sent = min(length, CHARS)
            message = record[R_CHARS : R_CHARS + 2 * sent].decode("utf-16-le", errors="replace")
        sites = struct.unpack_from(f"<{min(count, SITES)}Q", record, R_SITES)
        return cls(tid, obj, mt, hresult, message, length > CHARS, sites)


def encode(request: Request) -> bytes:
    """The record as the stub writes it (for a question asked from lldb at a stop: stop_question.py);
    a message longer than CHARS is sent cut, its length whole (``truncated`` when parsed)."""
    record = bytearray(REQUEST_SIZE)
    text = (request.message or "").encode("utf-16-le")
    length = -1 if request.message is None else len(text) // 2
    sites = request.return_addresses[:SITES]
    struct.pack_into(
        "<QQQIiI",
        record,
        0,
        request.thread_id,
        request.object,
        request.method_table,
        request.hresult,
        length,
        len(sites),
    )
    struct.pack_into(f"<{len(sites)}Q", record, R_SITES, *sites)
    cut = text[: 2 * CHARS]
    record[R_CHARS : R_CHARS + len(cut)] = cut
    return bytes(record)


def page(
    message_at: int,
    hresult_at: int,
    pid: int,
    name: Optional[str] = None,
    runtime: Tuple[int, int] = (0, 0),
) -> bytes:
    """The page's first RECORD bytes as the agent writes them: with ``name`` (the listening socket's; a
    leading NUL: an abstract name, which no file permission keeps a target of another user from) the
    question is on; without, off. ``runtime``: libcoreclr's code range (none: only ``[rsp]`` is sent)."""
    head = bytearray(RECORD)
    length = 0
    if name is not None:
        raw = name.encode()
        if len(raw) >= ADDR_SIZE - 2:
            raise ValueError(f"socket name too long for sockaddr_un: {name!r}")
        struct.pack_into("<H", head, ADDR, AF_UNIX)
        head[ADDR + 2 : ADDR + 2 + len(raw)] = raw
        length = 2 + len(raw) + (0 if raw.startswith(b"\0") else 1)  # an abstract name counts every byte
    on = 1 if name is not None else 0
    struct.pack_into(
        "<QQQQQQQQqQQQ", head, 0, on, 0, 0, 0, message_at, hresult_at, 0, pid, -1, length, *runtime
    )
    return bytes(head)


def emit(
    a: Any, page_at: int, load_object: bytes, save: Callable[[Any], None], restore: Callable[[Any], None]
) -> None:
    """The question, at label ``ask``; it ends at ``go_on`` (``n``) or falls through to ``trap``, which the
    caller places right behind. ``a``: filter_stub's assembler; the argument registers are the function's
    own on entry and again at every exit (``save``/``restore``: their red-zone slots). Labels for the agent:
    ``ask_saved`` to ``ask_end`` borrow the registers; ``locked`` to ``ask_end`` may hold the lock (a
    thread stopped there may be inside ``sendto``/``recvfrom``: it must run out, not be moved)."""

    def at(raw: bytes, offset: int) -> bytes:  # an instruction with a [r10+disp32] operand
        return raw + struct.pack("<i", offset)

    base = b"\x49\xba" + struct.pack("<Q", page_at)  # mov r10, page
    a.label("ask")
    a += base
    a += at(b"\x49\x83\xba", ON) + b"\x00"  # cmp qword [r10+ON], 0
    a.jump("trap", JE)  # off, or the one who answers is gone
    save(a)
    a.label("ask_saved")
    a += b"\xb8" + struct.pack("<I", SYS_GETPID) + b"\x0f\x05"  # getpid
    a += at(b"\x49\x3b\x82", PID)  # cmp rax, [r10+PID]
    a.jump("not_ours", JNE)  # a forked child (its copy of the lock may be held for good): no question
    a.label("lock")
    a += b"\xb8\x01\x00\x00\x00"  # mov eax, 1
    a += at(b"\x41\x87\x82", LOCK)  # xchg [r10+LOCK], eax
    a += b"\x85\xc0"  # test eax, eax
    a.jump("locked", JE)
    a += b"\xb8" + struct.pack("<I", SYS_SCHED_YIELD) + b"\x0f\x05"  # sched_yield (r10 survives a syscall)
    a.jump("lock")
    a.label("locked")
    a += at(b"\x49\xff\x82", ASKED)  # inc qword [r10+ASKED]
    # A socket of its own for each question, closed before the thread goes on: no fd of ours stays in the
    # program between questions (one it closed and reused could not be written to by mistake).
    a += b"\xbf" + struct.pack("<I", AF_UNIX)  # mov edi, AF_UNIX
    a += b"\xbe" + struct.pack("<I", SOCK_SEQPACKET | SOCK_CLOEXEC)  # mov esi, ..
    a += b"\x31\xd2"  # xor edx, edx
    a += b"\xb8" + struct.pack("<I", SYS_SOCKET) + b"\x0f\x05"  # socket
    a += b"\x48\x85\xc0"  # test rax, rax
    a.jump("ask_yes", JS)  # no socket now (the fd limit): this throw stops, the question stays on
    a += at(b"\x49\x89\x82", FD)  # mov [r10+FD], rax
    a += b"\x48\x89\xc7"  # mov rdi, rax
    a += at(b"\x49\x8d\xb2", ADDR)  # lea rsi, [r10+ADDR]
    a += at(b"\x49\x8b\x92", ADDR_LEN)  # mov rdx, [r10+ADDR_LEN]
    a += b"\xb8" + struct.pack("<I", SYS_CONNECT) + b"\x0f\x05"  # connect
    a += b"\x48\x85\xc0"  # test rax, rax
    a.jump("close_off", JNE)  # no one listens
    a.label("record")
    a += b"\xb8" + struct.pack("<I", SYS_GETTID) + b"\x0f\x05"  # gettid
    a += at(b"\x49\x89\x82", RECORD + R_TID)  # mov [r10+..], rax
    a += b"\x48\x8b\x7c\x24\xe0"  # mov rdi, [rsp-32]: the function's own, from its slot
    a += load_object  # rax = the exception object
    a += at(b"\x49\x89\x82", RECORD + R_OBJECT)  # mov [r10+..], rax
    a += b"\x48\x8b\x10"  # mov rdx, [rax]: the MethodTable
    a += at(b"\x49\x89\x92", RECORD + R_MT)  # mov [r10+..], rdx
    a += at(b"\x4d\x8b\x8a", HRESULT_AT)  # mov r9, [r10+HRESULT_AT]
    a += b"\x46\x8b\x04\x08"  # mov r8d, [rax+r9]
    a += at(b"\x45\x89\x82", RECORD + R_HRESULT)  # mov [r10+..], r8d
    a += at(b"\x4d\x8b\x8a", MESSAGE_AT)  # mov r9, [r10+MESSAGE_AT]
    a += b"\x4a\x8b\x34\x08"  # mov rsi, [rax+r9]: the message (a string) or 0
    a += b"\xb9\xff\xff\xff\xff"  # mov ecx, -1
    a += b"\x48\x85\xf6"  # test rsi, rsi
    a.jump("no_text", JE)
    a += b"\x8b\x4e\x08"  # mov ecx, [rsi+8]: its length
    a.label("no_text")
    a += at(b"\x41\x89\x8a", RECORD + R_LENGTH)  # mov [r10+..], ecx
    a += b"\x85\xc9"  # test ecx, ecx
    a.jump("copied", JLE)
    a += b"\x81\xf9" + struct.pack("<I", CHARS)  # cmp ecx, CHARS
    a.jump("fits", JBE)
    a += b"\xb9" + struct.pack("<I", CHARS)  # mov ecx, CHARS
    a.label("fits")
    a += b"\x48\x83\xc6\x0c"  # add rsi, 12: its UTF-16 text
    a += at(b"\x49\x8d\xba", RECORD + R_CHARS)  # lea rdi, [r10+..]
    a += b"\xf3\x66\xa5"  # rep movsw (the direction flag is clear at a call)
    a.label("copied")
    _return_addresses(a, at)
    a.label("send")
    a += at(b"\x49\x8b\xba", FD)  # mov rdi, [r10+FD]
    a += at(b"\x49\x8d\xb2", RECORD)  # lea rsi, [r10+RECORD]
    a += b"\xba" + struct.pack("<I", REQUEST_SIZE)  # mov edx, REQUEST_SIZE
    a += b"\x41\xba" + struct.pack("<I", MSG_NOSIGNAL)  # mov r10d, MSG_NOSIGNAL: flags, the 4th argument
    a += b"\x45\x31\xc0\x45\x31\xc9"  # xor r8d, r8d; xor r9d, r9d: no address
    a += b"\xb8" + struct.pack("<I", SYS_SENDTO) + b"\x0f\x05"  # sendto
    a += base
    a += b"\x48\x83\xf8" + bytes([(-EINTR) & 0xFF])  # cmp rax, -EINTR
    a.jump("send", JE)
    a += b"\x48\x3d" + struct.pack("<I", REQUEST_SIZE)  # cmp rax, REQUEST_SIZE
    a.jump("close_off", JNE)
    a.label("receive")
    a += at(b"\x49\x8b\xba", FD)  # mov rdi, [r10+FD]
    a += at(b"\x49\x8d\xb2", VERDICT)  # lea rsi, [r10+VERDICT]
    a += b"\xba\x01\x00\x00\x00"  # mov edx, 1
    a += b"\x45\x31\xd2\x45\x31\xc0\x45\x31\xc9"  # xor r10d, r10d; xor r8d, r8d; xor r9d, r9d
    a += b"\xb8" + struct.pack("<I", SYS_RECVFROM) + b"\x0f\x05"  # recvfrom: the thread waits here
    a += base
    a += b"\x48\x83\xf8" + bytes([(-EINTR) & 0xFF])  # cmp rax, -EINTR
    a.jump("receive", JE)
    a += b"\x48\x83\xf8\x01"  # cmp rax, 1
    a.jump("close_off", JNE)  # end of file (0) or an error: no one answers
    _close(a, at, base)
    a += at(b"\x41\x80\xba", VERDICT) + b"n"  # cmp byte [r10+VERDICT], 'n'
    a.jump("ask_yes", JNE)
    a += at(b"\x49\xff\x82", PASSED)  # inc qword [r10+PASSED]
    _unlock(a, at)
    restore(a)
    a.jump("go_on")
    a.label("close_off")
    _close(a, at, base)
    a += at(b"\x49\xc7\x82", ON) + b"\x00\x00\x00\x00"  # mov qword [r10+ON], 0: ask no more
    a.label("ask_yes")
    _unlock(a, at)
    a.label("not_ours")
    restore(a)
    a.label("ask_end")  # then the trap, right behind


def _return_addresses(a: Any, at: Callable[[bytes, int], bytes]) -> None:
    """Into the record: ``[rsp]`` (the funnel's return address: rsp never moved), then, while the last one
    is in the runtime's code and the chain holds, ``[rbp+8]`` of each frame up. The runtime's frames keep
    rbp (throw_sites.py), so the first address out of it is the managed thrower's; a frame pointer is
    followed only upwards and within FRAME_REACH of rsp, aligned (what it points to is then this thread's
    stack). throw_sites.walk is the same walk in Python."""
    a += at(b"\x4d\x8b\x82", RUNTIME_LO)  # mov r8, [r10+..]
    a += at(b"\x4d\x8b\x8a", RUNTIME_HI)  # mov r9, [r10+..]
    a += at(b"\x49\x8d\xba", RECORD + R_SITES)  # lea rdi, [r10+..]
    a += b"\x31\xc9"  # xor ecx, ecx: how many
    a += b"\x48\x8b\x04\x24"  # mov rax, [rsp]
    a += b"\x48\x89\xee"  # mov rsi, rbp: the caller's frame
    a += b"\x49\x89\xe3"  # mov r11, rsp: a frame is above the last one
    a.label("site")
    a += b"\x48\x89\x04\xcf"  # mov [rdi+rcx*8], rax
    a += b"\xff\xc1"  # inc ecx
    a += b"\x4c\x39\xc0"  # cmp rax, r8
    a.jump("sites_done", JB)  # out of the runtime: the thrower's
    a += b"\x4c\x39\xc8"  # cmp rax, r9
    a.jump("sites_done", JAE)
    a += b"\x83\xf9" + bytes([SITES])  # cmp ecx, SITES
    a.jump("sites_done", JAE)
    a += b"\x4c\x39\xde"  # cmp rsi, r11
    a.jump("sites_done", JBE)  # not above the last frame
    a += b"\x48\x89\xf2"  # mov rdx, rsi
    a += b"\x48\x29\xe2"  # sub rdx, rsp
    a += b"\x48\x81\xfa" + struct.pack("<I", FRAME_REACH)  # cmp rdx, FRAME_REACH
    a.jump("sites_done", JAE)
    a += b"\xf7\xc6\x07\x00\x00\x00"  # test esi, 7
    a.jump("sites_done", JNE)
    a += b"\x49\x89\xf3"  # mov r11, rsi
    a += b"\x48\x8b\x46\x08"  # mov rax, [rsi+8]: this frame's return address
    a += b"\x48\x8b\x36"  # mov rsi, [rsi]: its caller's rbp
    a.jump("site")
    a.label("sites_done")
    a += at(b"\x41\x89\x8a", RECORD + R_SITE_COUNT)  # mov [r10+..], ecx


def _close(a: Any, at: Callable[[bytes, int], bytes], base: bytes) -> None:
    a += at(b"\x49\x8b\xba", FD)  # mov rdi, [r10+FD]
    a += b"\xb8" + struct.pack("<I", SYS_CLOSE) + b"\x0f\x05"  # close
    a += base


def _unlock(a: Any, at: Callable[[bytes, int], bytes]) -> None:
    a += at(b"\x41\xc7\x82", LOCK) + b"\x00\x00\x00\x00"  # mov dword [r10+LOCK], 0 (a store releases)
