"""The sample service (examples/ServiceApp) on both runtimes, no debugger: it starts, answers, counts.

Debugger tests on the service (item 7 of issue 9) rely on these counts: /stats must name every throw
once, by kind and type, and nothing else. Everything here talks to 127.0.0.1 only, in bounded loops.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Any, Dict, List

import pytest

from tests.integration.conftest import StartLoad, StartService, process_state
from tests.integration.service import DEFAULT_TYPE, TYPES, Service, ServiceError, expected_stats


def listening_addresses(port: int) -> List[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} print them) of sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.append(address)
    return found


def test_ready_line_names_the_process_and_a_loopback_port(service: Service, runtime: str) -> None:
    assert service.pid == service.proc.pid and service.port > 0
    assert service.lines[0] == f"READY {service.pid} {service.port}"
    assert listening_addresses(service.port) == ["0100007F"]  # 127.0.0.1, nothing else
    assert service.types() == list(TYPES)
    stats = service.stats()
    assert stats["runtime"].startswith("8." if runtime == "net8" else "10.")
    assert (stats["pid"], stats["total"], stats["background_pending"]) == (service.pid, 0, 0)
    assert stats["kinds"] == expected_stats([]) and stats["types"] == {}


def test_counts_by_kind_and_type(service: Service) -> None:
    calls = [
        ("handled", DEFAULT_TYPE, 5),
        ("handled", "System.TimeoutException", 3),
        ("unhandled", "ServiceApp.OrderRejectedException", 1),
        ("unhandled", "ServiceApp.OrderRejectedException", 1),
        ("unhandled", DEFAULT_TYPE, 1),
        ("background", "System.Collections.Generic.KeyNotFoundException", 4),
        ("handled", "System.Collections.Generic.KeyNotFoundException", 2),
    ]
    for kind, type_name, n in calls:
        if kind == "handled":
            assert service.handled(type_name, n) == {
                "kind": kind,
                "type": type_name,
                "thrown": n,
                "caught": n,
            }
        elif kind == "unhandled":
            assert service.unhandled(type_name).status == 500
        else:
            reply = service.background(type_name, n)
            assert reply == {"kind": kind, "type": type_name, "queued": n, "done": True}
    stats = service.stats()
    assert stats["kinds"] == expected_stats(calls)
    assert stats["types"] == {
        DEFAULT_TYPE: 6,
        "System.TimeoutException": 3,
        "ServiceApp.OrderRejectedException": 2,
        "System.Collections.Generic.KeyNotFoundException": 6,
    }
    assert stats["total"] == 17 == sum(n for _, _, n in calls)
    assert stats["requests"] == len(calls) + 1  # this /stats request is counted too


def test_messages_number_the_throws_of_each_type(service: Service) -> None:
    # "<kind> <type> #<n>", n counting throws of that type over every kind: a debugger test can tell
    # which throw it stopped at.
    service.handled("System.FormatException", 2)
    service.background("System.FormatException", 1)
    service.handled("System.ArgumentException", 1)
    assert service.stats()["types"] == {"System.FormatException": 3, "System.ArgumentException": 1}


@pytest.mark.parametrize(
    "path,params,needle",
    [
        ("/handled", {"type": "System.Nope"}, "unknown type 'System.Nope'"),
        ("/handled", {"n": 0}, "n must be 1..100000"),
        ("/handled", {"n": 100001}, "n must be 1..100000"),
        ("/unhandled", {"type": "nope"}, "unknown type"),
        ("/background", {"n": -1}, "n must be"),
    ],
)
def test_bad_input_is_refused_and_throws_nothing(
    service: Service, path: str, params: Any, needle: str
) -> None:
    reply = service.get(path, params)
    assert reply.status == 400 and needle in reply.json()["error"]
    if "unknown type" in needle:
        assert reply.json()["known"] == list(TYPES)
    assert service.stats()["total"] == 0


def test_background_work_without_waiting(service: Service) -> None:
    reply = service.background("System.TimeoutException", 200, wait=False)
    assert reply == {"kind": "background", "type": "System.TimeoutException", "queued": 200, "done": False}
    stats = service.wait_idle(timeout=30)
    assert stats["kinds"]["background"] == {"System.TimeoutException": 200}
    assert stats["kinds"]["handled"] == {} and stats["kinds"]["unhandled"] == {}


def test_client_threads_under_load_agree_with_the_counts(service: Service, service_load: StartLoad) -> None:
    handled = service_load(
        service, "/handled", {"type": "System.TimeoutException", "n": 3}, count=300, seconds=60
    )
    unhandled = service_load(service, "/unhandled", {"type": "System.FormatException"}, count=100, seconds=60)
    background = service_load(service, "/background", {"n": 2, "wait": 0}, count=100, seconds=60)
    for load in (handled, unhandled, background):
        load.join(90)
        assert load.error is None, load.error
    assert handled.statuses == {200: 300}
    assert unhandled.statuses == {500: 100}
    assert background.statuses == {202: 100}
    stats = service.wait_idle(timeout=30)
    assert stats["kinds"] == expected_stats(
        [
            ("handled", "System.TimeoutException", 900),
            ("unhandled", "System.FormatException", 100),
            ("background", DEFAULT_TYPE, 200),
        ]
    )
    assert stats["requests"] >= 501  # the loads, then the polls of wait_idle


def test_a_load_stops_at_its_time_limit(service: Service, service_load: StartLoad) -> None:
    started = time.monotonic()
    load = service_load(service, "/stats", count=10**9, seconds=1.0, pause=0.01)
    load.join(30)
    assert 0.9 <= time.monotonic() - started < 20
    assert 0 < load.sent < 10**9 and load.statuses == {200: load.sent} and not load.running


def test_exit_prints_done_with_the_total(service: Service) -> None:
    service.handled(n=4)
    service.unhandled()
    assert service.stop() == 0
    assert service.lines[-1] == "DONE 5"
    assert service.stop() == 0  # a second stop is harmless


def test_a_given_port_is_used(runtime: str, start_service: StartService) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = start_service(runtime, port=port)
    assert svc.port == port
    assert svc.handled(n=1)["thrown"] == 1


def test_a_port_in_use_is_a_clear_error(service: Service, service_path: str) -> None:
    done = subprocess.run(
        [service_path, "--port", str(service.port)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1 and "READY" not in done.stdout
    assert f"cannot listen on 127.0.0.1:{service.port}" in done.stderr
    assert service.stats()["total"] == 0  # the running one is untouched


@pytest.mark.parametrize("args", [["--port"], ["--port", "x"], ["--port", "70000"], ["--verbose"]])
def test_bad_arguments(service_path: str, args: List[str]) -> None:
    done = subprocess.run([service_path, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "usage: ServiceApp [--port N]" in done.stderr


def test_a_service_that_does_not_answer_is_killed_at_stop(service: Service) -> None:
    # As if a debugger held it stopped: /exit cannot be answered, stop() kills it in bounded time.
    os.kill(service.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10  # the signal is delivered asynchronously
    while process_state(service.pid) not in ("T", "t") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_state(service.pid) in ("T", "t")
    started = time.monotonic()
    assert service.stop(timeout=1.0) == -signal.SIGKILL
    assert time.monotonic() - started < 30
    assert process_state(service.pid) == "gone"


def test_a_service_that_never_gets_ready_is_not_left_running(tmp_path: Any) -> None:
    fake = tmp_path / "ServiceApp"
    fake.write_text("#!/bin/sh\necho starting\nexec sleep 600\n")
    fake.chmod(0o755)
    with pytest.raises(ServiceError, match="no READY line"):
        Service(str(fake), ready_timeout=0.5)
    # The helper killed its own process: no sleep of ours is left.
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-x", "sleep"], capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_warm_up_throws_thousands_and_counts_them(service: Service) -> None:
    stats = service.warm_up(requests=100, n=10, settle=0.1)
    assert stats["kinds"] == expected_stats(
        [
            ("handled", DEFAULT_TYPE, 1000),
            ("unhandled", DEFAULT_TYPE, 100),
            ("background", DEFAULT_TYPE, 1000),
        ]
    )
    assert stats["requests"] == 301


def test_the_client_never_uses_a_proxy(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy in the environment must not take loopback requests anywhere: port 9 (discard) answers nothing.
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert service.stats()["total"] == 0


def test_stats_shape(service: Service) -> None:
    stats: Dict[str, Any] = service.stats()
    assert set(stats) == {"pid", "runtime", "requests", "background_pending", "total", "kinds", "types"}
    assert set(stats["kinds"]) == {"handled", "unhandled", "background"}
