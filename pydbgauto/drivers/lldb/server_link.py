"""Which of lldb's file descriptors is its connection to lldb-server (stdlib only: runs inside lldb).

lldb talks to the lldb-server it started over a socketpair. When lldb dies, lldb-server sees that
socket's end of file within 50-150 ms and exits, leaving its int3s in the armed target; the guardian must
freeze it before that (its take-over), a race it lost on a loaded CI machine. A copy of lldb's end held by
the guardian (sent over the journal) means lldb-server never sees that end of file by itself: the
take-over always comes first. Proven in docs/linux.md ("the guardian holds lldb's connection").

The peer of a socket is read from the kernel's sock_diag netlink interface (UNIX_DIAG_PEER), which any
user may ask about their own sockets.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Dict, List, Optional, Union

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
UDIAG_SHOW_PEER = 0x4
UNIX_DIAG_PEER = 2
NO_COOKIE = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_REQUEST = struct.Struct("=BBHIII2I")  # struct unix_diag_req
_MESSAGE_SIZE = 16  # struct unix_diag_msg
_ATTRIBUTE = struct.Struct("=HH")  # struct rtattr


def socket_inodes(pid: Union[int, str]) -> Dict[int, int]:
    """fd -> inode of each socket ``pid`` (or "self") has open; {} where /proc does not show them."""
    found: Dict[int, int] = {}
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        try:
            link = os.readlink(f"{folder}/{name}")
        except OSError:
            continue
        if link.startswith("socket:[") and link.endswith("]"):
            found[int(name)] = int(link[8:-1])
    return found


def peer_inode(inode: int) -> Optional[int]:
    """The inode of the other end of the Unix socket ``inode``; None if the kernel does not say."""
    request = _REQUEST.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, inode, UDIAG_SHOW_PEER, NO_COOKIE, NO_COOKIE)
    header = _HEADER.pack(_HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(1.0)
            diag.sendto(header + request, (0, 0))
            reply = diag.recv(8192)
    except OSError:
        return None
    return _peer_in_reply(reply)


def _peer_in_reply(reply: bytes) -> Optional[int]:
    if len(reply) < _HEADER.size:
        return None
    length, kind, _, _, _ = _HEADER.unpack_from(reply)
    if kind == NLMSG_ERROR or kind != SOCK_DIAG_BY_FAMILY:
        return None
    offset = _HEADER.size + _MESSAGE_SIZE
    end = min(length, len(reply))
    while offset + _ATTRIBUTE.size <= end:
        size, attribute = _ATTRIBUTE.unpack_from(reply, offset)
        if size < _ATTRIBUTE.size:
            return None
        if attribute == UNIX_DIAG_PEER and offset + 8 <= end:
            return int(struct.unpack_from("=I", reply, offset + 4)[0])
        offset += (size + 3) & ~3
    return None


def connections_to(server_pid: int) -> List[int]:
    """This process's fds whose socket's other end is held by ``server_pid`` (lldb's to lldb-server)."""
    theirs = set(socket_inodes(server_pid).values()) if server_pid > 0 else set()
    if not theirs:
        return []
    return sorted(fd for fd, inode in socket_inodes("self").items() if peer_inode(inode) in theirs)
