"""Finding lldb's connection to lldb-server, and the guardian holding a copy of it (real sockets, real
processes: the kernel's sock_diag answers)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys

from pydbgauto.drivers.lldb import server_link
from pydbgauto.drivers.lldb.guardian import Guardian, Journal


def test_peer_of_each_end_of_a_socketpair():
    a, b = socket.socketpair()
    with a, b:
        ia, ib = (os.fstat(s.fileno()).st_ino for s in (a, b))
        assert server_link.peer_inode(ia) == ib and server_link.peer_inode(ib) == ia
        assert server_link.socket_inodes("self")[a.fileno()] == ia


def test_the_connection_to_a_child_holding_the_other_end():
    """As lldb and lldb-server: our end is found by the child's pid; an unrelated socket is not."""
    ours, theirs = socket.socketpair()
    other, other_peer = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=[theirs.fileno()],
    )
    try:
        theirs.close()
        assert server_link.connections_to(child.pid) == [ours.fileno()]
    finally:
        child.communicate(b"")
        for s in (ours, other, other_peer):
            s.close()
    assert server_link.connections_to(child.pid) == []  # gone: nothing found, no error
    assert server_link.connections_to(0) == []


def test_a_reply_without_the_peer_or_an_error_reply_says_none():
    error = struct.pack("=IHHII", 36, server_link.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -2) + bytes(16)
    assert server_link._peer_in_reply(error) is None
    bare = struct.pack("=IHHII", 32, server_link.SOCK_DIAG_BY_FAMILY, 0, 1, 0) + bytes(16)
    assert server_link._peer_in_reply(bare) is None
    assert server_link._peer_in_reply(b"") is None


def test_the_guardian_keeps_a_descriptor_sent_on_its_journal():
    """Journal.link sends it with a journal line; the guardian's reads keep it (a plain read drops it),
    so the connection stays open after the sender closes its own copy."""
    reader, writer = socket.socketpair()
    link, link_peer = socket.socketpair()
    journal = Journal(writer.fileno())
    guardian = Guardian(reader.makefile("rb"), None)
    journal.link([link.fileno()])
    data = guardian._receive()
    assert b'"op": "link"' in data and len(guardian.links) == 1
    link.close()
    held = socket.socket(fileno=guardian.links[0])
    link_peer.sendall(b"x")
    assert held.recv(1) == b"x"  # the copy is the same connection
    for s in (held, link_peer, reader, writer):
        s.close()


def test_a_journal_on_a_pipe_sends_no_descriptor_and_still_works():
    r, w = os.pipe()
    a, b = socket.socketpair()
    journal = Journal(w)
    journal.link([a.fileno()])  # nothing to carry it: ignored
    journal.detached()
    with os.fdopen(r, "rb") as f:
        guardian = Guardian(f, None)
        assert guardian._receive() == b'{"op": "detached"}\n' and guardian.links == []
    os.close(w)
    a.close()
    b.close()
