""".NET 8 hardware faults at first chance, on the real lldb + SOS (pydbgauto/drivers/lldb/legacy_faults.py).

The real agent runs in its .NET 8 mode (``__cxa_rethrow``) with the fault module wired beside it by
``net8_faults_harness.py``; each event records what a user sees at the stop (bare ``pe``, ``pe
<address>``, ``clrstack``). Targets: the sample app's ``nullref`` scenario, and FaultApp
(``tests/integration/faultapp``), built here for .NET 8 (or taken from ``PYDBGAUTO_FAULTAPP``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any, Dict, List, Tuple

import pytest

from tests.integration.conftest import APPS

pytestmark = pytest.mark.lldb

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "net8_faults_harness.py")
HARDWARE = "FaultingExceptionFrame"


@pytest.fixture(scope="session")
def faultapp(tmp_path_factory: pytest.TempPathFactory) -> str:
    prebuilt = os.environ.get("PYDBGAUTO_FAULTAPP")
    if prebuilt:
        return prebuilt
    dotnet = shutil.which("dotnet")
    if not dotnet:
        pytest.skip("no dotnet SDK to build FaultApp")
    work = tmp_path_factory.mktemp("faultapp")
    source = work / "src"
    shutil.copytree(os.path.join(HERE, "faultapp"), source)
    out = work / "out"
    build = subprocess.run(
        [
            dotnet,
            "publish",
            str(source),
            "-c",
            "Release",
            "-f",
            "net8.0",
            "-r",
            "linux-x64",
            "--self-contained",
            "-o",
            str(out),
            "-nologo",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return str(out / "FaultApp")


def run(tmp_path: Any, argv: List[str], timeout: float = 90) -> Tuple[List[Dict[str, Any]], List[str]]:
    return run_with(tmp_path, argv, timeout)


def run_with(
    tmp_path: Any, argv: List[str], timeout: float = 90, **extra: str
) -> Tuple[List[Dict[str, Any]], List[str]]:
    """The harness on a launched target; ``extra`` goes into its environment."""
    from pydbgauto import locate

    stdout = str(tmp_path / "target.out")
    env = dict(
        os.environ,
        PDA_FAULTS_ARGV=json.dumps(argv),
        PDA_FAULTS_SOS=locate.find_sos_plugin(),
        PDA_FAULTS_STDOUT=stdout,
        PDA_FAULTS_TIMEOUT=str(timeout),
        PYDBGAUTO_OWNER_PID=str(os.getpid()),
        **extra,
    )
    done = subprocess.run(
        ["lldb-19", "--no-lldbinit", "-b", "-o", f"command script import {HARNESS}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout + 60,
        stdin=subprocess.DEVNULL,
    )
    records = [
        json.loads(line.split(" ", 1)[1])
        for line in done.stdout.splitlines()
        if line.startswith("PDA-FAULTS ")
    ]
    assert not [r for r in records if r["kind"] in ("error", "timeout")], done.stdout + done.stderr
    with open(stdout) as f:
        lines = f.read().splitlines()
    return records, lines


def events(records: List[Dict[str, Any]], kind: str = "first-chance") -> List[Dict[str, Any]]:
    return [r for r in records if r["kind"] == kind]


def faults(lines: List[str]) -> List[List[str]]:
    """FaultApp's `FAULT n Type tid=N what` lines, split."""
    return [line.split(" ", 4) for line in lines if line.startswith("FAULT ")]


def stats(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    return [r for r in records if r["kind"] == "stats"][0]


def assert_shown(event: Dict[str, Any], type_name: str, method: str) -> None:
    """At the stop: bare `pe` and `pe <address>` show the new exception, clrstack the faulting method."""
    assert event["exception_address"], event
    assert event["bare_pe"] == {"address": event["exception_address"], "type": type_name}, event
    assert event["pe"] == {"address": event["exception_address"], "type": type_name}, event
    assert event["frames"][0].endswith(method), event


def test_nullref_scenario_gives_one_event_with_object_and_stack(tmp_path: Any, no_lldb_left: None) -> None:
    records, lines = run(tmp_path, [APPS["net8"], "nullref"])
    assert [r for r in records if r["kind"] == "armed"][0]["mechanism"] == "cxa-rethrow"
    first = events(records)
    assert len(first) == 1, records
    assert_shown(first[0], "System.NullReferenceException", "Program.NullDereference()")
    assert first[0]["runtime_frames"] == [HARDWARE]
    assert first[0]["signal"] == 11 and first[0]["fault_address"] == 0
    assert first[0]["thread_id"] == int(lines[1].split("tid=")[1].split()[0])  # THROW 1 ... tid=N
    # the signal, the dispatcher's entry and return; and libc's exit(), where the runtime's count is read
    assert stats(records)["stops"] == 3 + 1


def test_every_kind_of_fault_once_in_order(tmp_path: Any, faultapp: str, no_lldb_left: None) -> None:
    scenarios = ["divzero", "nullref", "overflow", "nullarray", "thrown", "incatch", "filter", "finally"]
    records, lines = run(tmp_path, [faultapp] + scenarios)
    thrown = faults(lines)
    # incatch faults twice (a division by zero, then a null dereference in its catch block)
    assert [t[2] for t in thrown] == [
        "System.DivideByZeroException",
        "System.NullReferenceException",
        "System.OverflowException",
        "System.NullReferenceException",
        "System.NullReferenceException",  # `thrown`: a managed throw, seen at __cxa_rethrow
        "System.DivideByZeroException",
        "System.NullReferenceException",
        "System.NullReferenceException",
        "System.DivideByZeroException",
    ]
    first = events(records)
    assert [e["bare_pe"]["type"] for e in first] == [t[2] for t in thrown]
    assert len({e["exception_address"] for e in first}) == len(thrown)
    methods = [
        "DivideByZero()",
        "NullDereference()",
        "Overflow()",
        "NullArray()",
        "Thrown()",
        "DivideByZero()",
        "NullDereference()",
        "NullDereference()",
        "DivideByZero()",
    ]
    for event, fault, method in zip(first, thrown, methods):
        assert_shown(event, fault[2], "Program." + method)
        assert event["thread_id"] == int(fault[3][4:])
        expected_frame = "HelperMethodFrame" if method == "Thrown()" else HARDWARE
        assert event["runtime_frames"] == [expected_frame], event
    assert [e["description"] for e in first if e["description"] == "__cxa_rethrow"] == ["__cxa_rethrow"]
    counters = stats(records)["faults"]
    assert counters["faults"] == counters["events"] == 8


def test_eight_threads_faulting_at_once(tmp_path: Any, faultapp: str, no_lldb_left: None) -> None:
    records, lines = run(tmp_path, [faultapp, "threads*8"])
    first = events(records)
    assert sorted(e["thread_id"] for e in first) == sorted(int(t[3][4:]) for t in faults(lines))
    assert len(first) == 8
    for event in first:
        assert_shown(event, "System.NullReferenceException", "Program.NullDereference()")


def test_unhandled_divide_by_zero_at_both_chances(tmp_path: Any, faultapp: str, no_lldb_left: None) -> None:
    records, lines = run(tmp_path, [faultapp, "nullref", "crash-divzero"])
    first = events(records)
    assert [e["bare_pe"]["type"] for e in first] == [
        "System.NullReferenceException",
        "System.DivideByZeroException",
    ]
    second = events(records, "second-chance")
    assert len(second) == 1
    assert second[0]["bare_pe"] == {
        "address": first[1]["exception_address"],
        "type": "System.DivideByZeroException",
    }
    assert second[0]["frames"][0].endswith("Program.DivideByZero()")
    assert "fault" not in second[0]  # the fault did become an exception: nothing to add


def test_unhandled_null_dereference_at_second_chance(
    tmp_path: Any, faultapp: str, no_lldb_left: None
) -> None:
    records, _ = run(tmp_path, [faultapp, "crash-nullref"])
    first, second = events(records), events(records, "second-chance")
    assert len(first) == 1 and len(second) == 1
    assert second[0]["bare_pe"] == {
        "address": first[0]["exception_address"],
        "type": "System.NullReferenceException",
    }


def test_access_violation_is_fatal_and_named_at_the_abort(
    tmp_path: Any, faultapp: str, no_lldb_left: None
) -> None:
    """A managed write to an unmapped non-null address: .NET 8 fails fast (no first chance exists)."""
    records, lines = run(tmp_path, [faultapp, "av"])
    assert events(records) == []
    second = events(records, "second-chance")
    assert len(second) == 1
    assert second[0]["fault"]["exception_type"] == "System.AccessViolationException"
    assert second[0]["fault"]["fault_address"] == 0x7FF000001000
    assert second[0]["frames"][0].endswith("Program.AccessViolation()")


@pytest.mark.slow
def test_hundreds_of_faults_each_once(tmp_path: Any, faultapp: str, no_lldb_left: None) -> None:
    """Tiered compilation re-JITs the faulting methods meanwhile; the mechanism is native code only."""
    records, lines = run(tmp_path, [faultapp, "nullref*150", "divzero*150"], timeout=240)
    first = events(records)
    assert len(first) == 300 == len(faults(lines))
    assert len({e["exception_address"] for e in first}) == 300
    assert all(e["bare_pe"]["address"] == e["exception_address"] for e in first)
    assert stats(records)["stops"] == 900 + 1  # 3 a fault, and the exit() the runtime's count is read at


def test_warm_attach_sees_faults_after_tiering(tmp_path: Any, no_lldb_left: None) -> None:
    """A process that has faulted and thrown a few hundred times before the attach (tier-1 code)."""
    from pydbgauto import locate
    from tests.integration.conftest import WaitingApp

    app = WaitingApp(APPS["net8"])
    try:
        for _ in range(40):
            app.send("nullref")
        app.send("repeat 100")
        assert app.wait_for_line("OK repeat 100", 60)
        before = len([line for line in app.lines if line.startswith("THROW ")])
        env = dict(
            os.environ,
            PDA_FAULTS_ARGV=json.dumps([APPS["net8"]]),
            PDA_FAULTS_PID=str(app.pid),
            PDA_FAULTS_SOS=locate.find_sos_plugin(),
            PDA_FAULTS_TIMEOUT="90",
            PYDBGAUTO_OWNER_PID=str(os.getpid()),
        )
        harness = subprocess.Popen(
            ["lldb-19", "--no-lldbinit", "-b", "-o", f"command script import {HARNESS}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert harness.stdout is not None
        records: List[Dict[str, Any]] = []
        for line in harness.stdout:
            if line.startswith("PDA-FAULTS "):
                records.append(json.loads(line.split(" ", 1)[1]))
                if records[-1]["kind"] == "armed":
                    break
        for _ in range(3):
            app.send("nullref")
        app.send("first-chance")  # five throws (one rethrown) and a null dereference
        assert app.wait_for_line("OK first-chance", 60)
        app.finish()
        for line in harness.stdout:
            if line.startswith("PDA-FAULTS "):
                records.append(json.loads(line.split(" ", 1)[1]))
        harness.wait(timeout=60)
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
    thrown = [line.split(" ", 4) for line in app.lines if line.startswith("THROW ")][before:]
    first = events(records)
    assert [e["bare_pe"]["type"] for e in first] == [t[2] for t in thrown]
    assert len(thrown) == 3 + 7
    hardware = [e for e in first if "signal" in e]
    assert len(hardware) == 4
    for event in hardware:
        assert_shown(event, "System.NullReferenceException", "Program.NullDereference()")


def test_expressions_at_every_stop_leave_the_faults_intact(
    tmp_path: Any, faultapp: str, no_lldb_left: None
) -> None:
    """SOS commands with an address argument and lldb expressions, at each stop of eight racing faults.

    Held at a *signal* stop, a thread loses its siginfo when lldb-server runs a syscall on it for an
    expression; the module never holds threads at signal stops (docs/linux-net8-faults.md).
    """
    for _ in range(3):
        records, lines = run_with(
            tmp_path, [faultapp, "threads*8", "nullarray"], PDA_FAULTS_AT_STOP="pe 1234"
        )
        first = events(records)
        assert len(first) == 9 == len(faults(lines)), records
        assert all(e["fault_address"] is not None and e["fault_address"] < 0x100 for e in first), first
        assert [r for r in records if r["kind"] == "exit"][0]["exit_status"] in (0, None, -1)


def test_why_threads_are_never_held_at_signal_stops(tmp_path: Any, faultapp: str, no_lldb_left: None) -> None:
    """The hazard of the fallback, reproduced: hold the faulting thread at its SIGSEGV stop and let lldb
    evaluate one expression there. lldb-server allocates the expression's memory by running a syscall
    on that thread; the SIGSEGV passed on afterwards is a new signal whose si_addr is lldb-server's pid,
    and that is what the runtime puts in the exception record as the fault address."""
    trace = tmp_path / "faults.trace"
    records, lines = run_with(
        tmp_path,
        [faultapp, "nullref"],
        PDA_FAULTS_AT_STOP="expr -- (void*)0",
        PYDBGAUTO_FAULTS_SIGNAL_STOPS="1",
        PYDBGAUTO_FAULTS_TRACE=str(trace),
    )
    armed = [r for r in records if r["kind"] == "armed"][0]
    assert armed["faults"]["faults"] == "signal-stops"
    entries = [line.split("record=")[1] for line in trace.read_text().splitlines() if " entry " in line]
    record = bytes.fromhex(entries[0])
    code, fault_address = int.from_bytes(record[0:4], "little"), int.from_bytes(record[40:48], "little")
    assert code == 0xC0000005
    assert [fault_address] == armed["lldb_server"], "lldb no longer rewrites the signal: the fallback is safe"


def test_a_dump_written_at_the_fault_event_shows_the_exception(
    tmp_path: Any, faultapp: str, no_lldb_left: None
) -> None:
    """dotnet-dump on the core written at the event: bare `pe`, the Exception column, the faulting frame."""
    from pydbgauto.readers import dotnet_dump

    core = tmp_path / "fault.core"
    records, _ = run_with(tmp_path, [faultapp, "divzero"], PDA_FAULTS_DUMP=str(core))
    event = events(records)[0]
    assert event["dump"]["path"] == str(core)
    reading = dotnet_dump.read(str(core), thread_id=event["thread_id"], timeout=180)  # bare pe
    assert reading.exception is not None
    assert (reading.exception.address, reading.exception.type) == (
        event["exception_address"],
        "System.DivideByZeroException",
    )
    assert [f.method for f in reading.exception.frames] == ["Program.DivideByZero()"]
    assert reading.threads is not None
    row = [t for t in reading.threads.threads if t.os_id == event["thread_id"]][0]
    assert (row.exception_type, row.exception_address) == (
        "System.DivideByZeroException",
        event["exception_address"],
    )
    assert reading.stack is not None
    assert [f.frame_type for f in reading.stack.frames[:1]] == [HARDWARE]
    assert reading.stack.frames[1].method == "Program.DivideByZero()"
