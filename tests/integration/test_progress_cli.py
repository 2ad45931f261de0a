"""`pydbgauto watch` shows a one-line progress display on stderr when it is a terminal, and not with --json
(issue 13, item 6). Real lldb + SOS, the real sample app; stderr is a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess

import pytest

from tests.integration.conftest import APPS, ROOT

pytestmark = pytest.mark.lldb


def _watch_with_a_terminal_stderr(tmp_path, *extra: str) -> tuple:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [os.path.join(ROOT, "scripts", "pydbgauto"), "watch", "--type", "System.InvalidOperationException"]
        + [
            "--dump-dir",
            str(tmp_path),
            "--no-verify",
            "--timeout",
            "120",
            *extra,
            "--",
            APPS["net10"],
            "invalid-op",
        ],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    err = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # the other end closed (EIO on Linux)
                break
            if not data:
                break
            err += data
        elif proc.poll() is not None:
            break
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(60)
    os.close(master)
    return proc.returncode, out, err.decode("utf-8", "replace")


def test_watch_draws_a_progress_line_on_a_terminal_stderr(tmp_path, no_lldb_left):
    code, out, err = _watch_with_a_terminal_stderr(tmp_path)
    assert code == 0, (out, err)
    assert "-> dump (matched)" in out and "\x1b[K" not in out  # the event lines stay on stdout, clean
    assert "\r\x1b[K[0:" in err and "; watching" in err
    assert "1 seen, 1 matched" in err and "last: System.InvalidOperationException" in err
    assert err.endswith("\r\x1b[K")  # taken away at the end


def test_no_progress_line_with_json(tmp_path, no_lldb_left):
    code, out, err = _watch_with_a_terminal_stderr(tmp_path, "--json")
    assert code == 0, (out, err)
    assert '"event": "summary"' in out
    assert "\x1b[K" not in err and "seen," not in err
