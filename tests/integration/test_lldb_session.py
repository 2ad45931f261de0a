"""The Linux path for real: lldb + SOS against the sample app on .NET 8 and .NET 10, launch and attach."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from pydbgauto import (
    ConfigurationError,
    DebuggerNotFoundError,
    DebuggerTimeoutError,
    DumpError,
    TargetExitedError,
)
from pydbgauto.session import Session
from pydbgauto.readers import dotnet_dump
from tests.integration.conftest import WaitingApp, process_state, renamed_app, throw_lines, tracer_of
from tests.integration.normal_user import PYTHON

pytestmark = pytest.mark.lldb

# The scenario `first-chance` throws these, in order (the app prints one THROW line per throw).
FIRST_CHANCE_TYPES = [
    "System.InvalidOperationException",
    "ThrowingApp.OrderRejectedException",
    "System.FormatException",
    "System.ApplicationException",
    "System.TimeoutException",
    "System.TimeoutException",  # the rethrow of the same object
    "System.NullReferenceException",
]


def expected_types(runtime: str) -> list:
    # Both runtimes: on .NET 8 the null dereference is followed from the runtime's fault handling.
    return FIRST_CHANCE_TYPES


def collect(session: Session, timeout: float = 60) -> list:
    events = []
    while True:
        event = session.wait_for_event(timeout)
        events.append(event)
        if event.kind == "exit":
            return events


def test_launch_stops_once_per_throw_with_parsed_exception(app, runtime, no_lldb_left):
    with Session.launch([app, "first-chance"]) as s:
        s.break_on_clr_exceptions()
        events = collect(s)
        out = open(s.driver.target_stdout).read().splitlines()  # type: ignore[attr-defined]
    exceptions = [e for e in events if e.kind == "first-chance"]
    assert [e.exception.type for e in exceptions] == expected_types(runtime)
    throws = throw_lines(out)
    assert len(throws) == 7
    for event, throw in zip(exceptions, throws):
        assert event.exception.type == throw[2]
        assert event.thread_id == int(throw[3].split("=")[1])
        assert event.exception_address == event.exception.address
        assert event.stack is not None and event.stack.os_thread_id == event.thread_id
    assert exceptions[0].exception.message == "The order queue timeout expired"
    assert exceptions[0].throw_site.method.startswith("ThrowingApp.Program.ThrowInvalidOperation")
    assert exceptions[5].exception.address == exceptions[4].exception.address  # rethrow: same object
    assert (
        exceptions[3].exception.inner_type is None
        or exceptions[3].exception.inner_type == "System.FormatException"
    )
    # lldb sometimes loses the exit status (lost connection): then it is None, never a wrong number
    assert events[-1].kind == "exit" and events[-1].exit_status in (0, None)


def test_dump_at_first_chance_reopens_with_same_exception(app, tmp_path, no_lldb_left):
    with Session.launch([app, "first-chance"]) as s:
        s.break_on_clr_exceptions()
        s.wait_for_event(60)
        event = s.wait_for_event(60)  # the custom exception
        record = s.dump(str(tmp_path / "custom.core"))
        assert record.verified, record.verify_error
        assert record.seen_exception_type == "ThrowingApp.OrderRejectedException"
        assert record.seen_thread_id == event.thread_id
        st = os.stat(record.path)
        assert st.st_mode & 0o777 == 0o600
        assert record.size == st.st_size and len(record.sha256 or "") == 64
        assert os.listdir(tmp_path) == ["custom.core"]  # no temporary file left
        with pytest.raises(DumpError, match="never overwrites"):
            s.dump(record.path)
    # An independent reading of the same file, outside the session
    reading = dotnet_dump.read(
        record.path, exception_address=event.exception_address, thread_id=event.thread_id
    )
    assert reading.exception.type == event.exception.type
    assert reading.stack.os_thread_id == event.thread_id
    assert any(t.os_id == event.thread_id for t in reading.threads.threads)


def test_crash_stops_at_second_chance_and_dumps_before_death(app, tmp_path, no_lldb_left):
    with Session.launch([app, "crash"]) as s:
        s.break_on_clr_exceptions()
        first = s.wait_for_event(60)
        assert first.kind == "first-chance" and first.exception.type == "System.InvalidOperationException"
        second = s.wait_for_event(60)
        assert second.kind == "second-chance"
        assert second.exception is not None and second.exception.type == "System.InvalidOperationException"
        assert second.exception.message == "Unhandled: the service is going down"
        assert second.thread_id == first.thread_id
        assert any("Crash" in (f.method or f.call_site) for f in second.stack.frames)
        record = s.dump(str(tmp_path / "crash.core"))
        assert record.verified, record.verify_error
        last = s.wait_for_event(60)
        assert last.kind == "exit"
        with pytest.raises(TargetExitedError):
            s.wait_for_event(1)


def test_attach_by_pid_then_detach_leaves_target_running(waiting_app, runtime, tmp_path, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        assert tracer_of(waiting_app.pid) != 0
        s.break_on_clr_exceptions()
        waiting_app.send("first-chance")
        events = [s.wait_for_event(60) for _ in expected_types(runtime)]
        assert [e.exception.type for e in events] == expected_types(runtime)
        record = s.dump(str(tmp_path / "attached.core"), expect=events[0])
        assert record.verified, record.verify_error
    assert tracer_of(waiting_app.pid) == 0
    assert process_state(waiting_app.pid) in "RS"
    waiting_app.send("invalid-op")  # the target still works, free of the debugger
    lines = waiting_app.finish()
    assert lines[-1].startswith("DONE")
    assert waiting_app.proc.returncode == 0


def test_attach_by_name(runtime, tmp_path, no_lldb_left):
    app = renamed_app(tmp_path, runtime, "ByName")  # other tests run ThrowingApp at the same time
    w = WaitingApp(app)
    try:
        with Session.attach(name=os.path.basename(app)) as s:
            assert s.pid == w.pid
            s.break_on_clr_exceptions()
            w.send("custom")
            event = s.wait_for_event(60)
            assert event.exception.type == "ThrowingApp.OrderRejectedException"
            assert "System.ArgumentException" in s.type_chain(event.exception_address)
        assert w.finish()[-1].startswith("DONE")
    finally:
        if w.proc.poll() is None:
            w.proc.kill()


@pytest.mark.slow
def test_attach_1000_throws_none_missed_none_doubled(waiting_app, runtime, no_lldb_left):
    """Tiered compilation rewrites hot code after ~30 calls; every throw must still stop once."""
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("repeat 1000")
        waiting_app.send("first-chance")
        count = 0
        for _ in range(1000):
            event = s.wait_for_event(60, parse=False)
            assert event.kind == "first-chance" and event.exception_address
            count += 1
        tail = [s.wait_for_event(60) for _ in expected_types(runtime)]
        assert [e.exception.type for e in tail] == expected_types(runtime)
        stats = s.driver.stats()  # type: ignore[attr-defined]
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(2)  # nothing doubled: no further event
    assert count == 1000
    assert stats["mechanism"] == ("append-frame" if runtime != "net8" else "cxa-rethrow"), stats
    assert len(throw_lines(waiting_app.finish())) == 1007


def test_timeout_then_close_leaves_target_running(waiting_app, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        started = time.monotonic()
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(1.0)
        assert time.monotonic() - started < 15
    assert tracer_of(waiting_app.pid) == 0 and process_state(waiting_app.pid) in "RS"
    assert waiting_app.finish()[-1].startswith("DONE")


def test_ctrl_c_during_wait_detaches_and_leaves_target_running(waiting_app, no_lldb_left):
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        with Session.attach(pid=waiting_app.pid) as s:
            s.break_on_clr_exceptions()
            timer.start()
            s.wait_for_event(None)
    timer.cancel()
    assert tracer_of(waiting_app.pid) == 0 and process_state(waiting_app.pid) in "RS"
    waiting_app.send("invalid-op")
    assert waiting_app.finish()[-1].startswith("DONE")


def test_python_exception_inside_session_detaches(waiting_app, no_lldb_left):
    with pytest.raises(RuntimeError):
        with Session.attach(pid=waiting_app.pid) as s:
            s.break_on_clr_exceptions()
            raise RuntimeError("user code failed")
    assert tracer_of(waiting_app.pid) == 0 and process_state(waiting_app.pid) in "RS"
    assert waiting_app.finish()[-1].startswith("DONE")


def test_target_exiting_during_session_is_an_exit_event(app, no_lldb_left):
    with Session.launch([app, "invalid-op"]) as s:  # no arming: runs to its end
        event = s.wait_for_event(60)
        assert event.kind == "exit" and event.exit_status in (0, None)  # None: lldb lost it
        with pytest.raises(TargetExitedError):
            s.wait_for_event(1)


# ----- bad input: clear pydbgauto errors, never a hang, nothing left behind --------------------------------


def test_dump_folder_that_does_not_exist(app, tmp_path, no_lldb_left):
    with Session.launch([app, "invalid-op"], kill_on_close=True) as s:
        s.break_on_clr_exceptions()
        s.wait_for_event(60)
        with pytest.raises(ConfigurationError, match="does not exist"):
            s.dump(str(tmp_path / "missing" / "x.core"))


# Run as a normal user (root writes anywhere): as root, the account scripts/setup creates.
_DUMP_INTO_READ_ONLY_FOLDER = """
import sys
from pydbgauto import ConfigurationError
from pydbgauto.session import Session
app, folder = sys.argv[1:]
with Session.launch([app, "invalid-op"], kill_on_close=True) as s:
    s.break_on_clr_exceptions()
    s.wait_for_event(60)
    try:
        s.dump(folder + "/x.core")
    except ConfigurationError as e:
        print("REFUSED", e)
"""


def test_dump_folder_not_writable(normal_user, runtime):
    folder = normal_user.mkdir(f"read-only-{runtime}", mode=0o500)
    done = subprocess.run(
        [PYTHON, "-c", _DUMP_INTO_READ_ONLY_FOLDER, normal_user.app(runtime), folder],
        capture_output=True,
        text=True,
        timeout=300,
        **normal_user.popen_kwargs(),
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.stdout, done.stderr)
    assert "REFUSED" in done.stdout and "not writable" in done.stdout, done.stdout
    assert not os.listdir(folder)


def test_lldb_missing(app, no_lldb_left):
    with pytest.raises(DebuggerNotFoundError, match="scripts/setup|apt-get"):
        Session.launch([app, "invalid-op"], lldb_path="/nonexistent/lldb")


def test_sos_missing(app, no_lldb_left):
    with pytest.raises(DebuggerNotFoundError, match="dotnet-dump"):
        Session.launch([app, "invalid-op"], sos_plugin="/nonexistent/libsosplugin.so")


def test_launch_of_missing_program(no_lldb_left):
    with pytest.raises(Exception, match="no such file"):
        Session.launch(["/nonexistent/App"])


def test_threads_throwing_at_once_each_stop_once(waiting_app, runtime, no_lldb_left):
    """8 threads throw at the same moment: one event each, on its own thread (several threads can stop
    together; the agent queues them). On .NET 9+ the first throw warms DispatchEx first: the very first
    throws of a process, racing on several threads, can be missed (docs/linux.md, Limits)."""
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("invalid-op")
        s.wait_for_event(60)
        waiting_app.send("threads 8")
        events = [s.wait_for_event(60) for _ in range(8)]
        with pytest.raises(DebuggerTimeoutError):
            s.wait_for_event(3)
    throwers = {int(t[3].split("=")[1]) for t in throw_lines(waiting_app.finish())[1:]}
    assert len(throwers) == 8
    assert {e.thread_id for e in events} == throwers
    assert all(e.exception.type == "System.InvalidOperationException" for e in events)
    assert all(e.stack.os_thread_id == e.thread_id for e in events)


def test_attached_crash_stops_at_second_chance_and_dumps_before_death(waiting_app, tmp_path, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("crash")
        first = s.wait_for_event(60)
        assert first.kind == "first-chance" and first.exception.type == "System.InvalidOperationException"
        second = s.wait_for_event(60)
        assert second.kind == "second-chance" and second.thread_id == first.thread_id
        assert second.exception.message == "Unhandled: the service is going down"
        record = s.dump(str(tmp_path / "attached-crash.core"))
        assert record.verified and record.seen_exception_type == "System.InvalidOperationException"
        assert s.wait_for_event(60).kind == "exit"
    waiting_app.proc.wait(timeout=30)
    assert waiting_app.proc.returncode != 0  # it crashed, as it would have without us
