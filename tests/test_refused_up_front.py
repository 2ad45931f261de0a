"""Input that watch, watch_all, Session and the CLI refuse before any debugger starts: these run without
lldb (nothing gets that far), and each checks that no lldb process of this test was started."""

from __future__ import annotations

import os
import secrets
import subprocess
from typing import Iterator

import pytest

import pydbgauto as pda
from pydbgauto import ConfigurationError, NoSuchProcessError, NotDotnetError
from tests.integration.conftest import ROOT, lldb_processes, process_state, run_cli, tracer_of


@pytest.fixture
def no_lldb_started() -> Iterator[None]:
    before = set(lldb_processes())
    yield
    assert set(lldb_processes()) == before, "a debugger was started for input that is refused up front"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(dump_dir="/nonexistent/dumps"), "does not exist"),
        (dict(name_template="../{n}.core"), "template"),
        (dict(max_dumps=-1), "max_dumps"),
        (dict(timeout=0), "timeout"),
    ],
)
def test_watch_refuses_bad_input(kwargs, match, tmp_path, no_lldb_started):
    kwargs.setdefault("dump_dir", str(tmp_path))
    with pytest.raises(ConfigurationError, match=match):
        pda.watch(launch=["/bin/true"], **kwargs)


def test_a_regex_that_does_not_compile():
    with pytest.raises(ConfigurationError, match="does not compile"):
        pda.message_matches("(unclosed")


def test_watch_all_refuses_a_name_no_process_has(tmp_path, no_lldb_started):
    with pytest.raises(NoSuchProcessError, match="--wait"):
        pda.watch_all("pdaNoSuch" + secrets.token_hex(3), dump_dir=str(tmp_path))
    with pytest.raises(ConfigurationError, match="timeout"):
        pda.watch_all("pdaNoSuch", wait=True, dump_dir=str(tmp_path), timeout=0)


def test_session_refuses_a_pid_or_name_that_does_not_exist(no_lldb_started):
    with pytest.raises(NoSuchProcessError):
        pda.Session.attach(pid=2**22 + 12345)
    with pytest.raises(NoSuchProcessError, match="wait=True"):
        pda.Session.attach(name="NoSuchServiceXyz")


def test_session_refuses_a_process_that_is_not_dotnet_and_leaves_it_running(no_lldb_started):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with pytest.raises(NotDotnetError, match="does not run .NET"):
            pda.Session.attach(pid=sleeper.pid)
        assert tracer_of(sleeper.pid) == 0 and process_state(sleeper.pid) in "RS"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["watch", "--when", "nosuchmodule:f", "--", "/bin/true"], 2, "cannot import"),
        (["watch", "--message", "(", "--", "/bin/true"], 2, "does not compile"),
        (["watch", "--dump-dir", "/nonexistent", "--", "/bin/true"], 2, "does not exist"),
        (["watch", "--pid", "999999999"], 3, "no process"),
        (["watch"], 2, "exactly one target"),
    ],
)
def test_cli_watch_refuses_bad_input_clearly(args, code, text):
    done = run_cli(*args)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert text in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "one of the arguments --pid --name is required"),
        (["--pid", "0"], "not a process id"),
        (["--pid", "x"], "not a process id"),
        (["--pid", "1", "--name", "a"], "not allowed with argument"),
        (["--name", "a/b"], "--name takes a process name"),
        (["--name", "NoSuchProcessAnywhere"], "no process called"),
        (["--pid", "1", "--dump-dir", "/no/such/folder"], "does not exist"),
        (["--pid", "1", "--timeout", "-3"], "positive number of seconds"),
    ],
)
def test_cli_dump_refuses_bad_input(args, message):
    done = subprocess.run(
        [os.path.join(ROOT, "scripts", "pydbgauto"), "dump"] + args,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (2, 3), (done.returncode, done.stderr)
    assert message in done.stderr
