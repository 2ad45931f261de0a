"""The driver contract (pydbgauto/drivers/base.py): what a driver must do, and the "not supported"
defaults of the abilities only some debuggers have. Pure: no debugger runs."""

from __future__ import annotations

import inspect
from typing import Any, List, Mapping, Optional

import pytest

from pydbgauto.drivers.base import DEFAULT, Driver, RawStop, StopKind, TimeLimit, resolve_timeout
from pydbgauto.errors import DebuggerError
from pydbgauto.session import Session


class MinimalDriver(Driver):
    """A driver with only the abstract methods: every optional ability keeps its default."""

    name = "minimal"

    def __init__(self) -> None:
        self.commands: List[str] = []
        self.timeouts: List[Optional[float]] = []

    @property
    def pid(self) -> Optional[int]:
        return 1234

    def start(self) -> None:
        pass

    def execute(self, command: str, timeout: TimeLimit = DEFAULT, *, thread_id: Optional[int] = None) -> str:
        self.commands.append(command)
        self.timeouts.append(resolve_timeout(timeout, -1.0))
        return "ThreadCount: 0\n"

    def arm_clr_exceptions(self) -> None:
        pass

    def disarm_clr_exceptions(self) -> None:
        pass

    def resume(self, timeout: Optional[float]) -> RawStop:
        return RawStop(StopKind.EXIT, exit_status=0)

    def write_dump(self, path: str, timeout: Optional[float]) -> None:
        raise AssertionError("not used")

    def versions(self) -> Mapping[str, str]:
        return {}

    def detach(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_driver_must_implement_the_core() -> None:
    with pytest.raises(TypeError):
        Driver()  # type: ignore[abstract]

    class Half(Driver):
        def start(self) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Half()  # type: ignore[abstract]


def test_optional_abilities_default_to_not_supported() -> None:
    d = MinimalDriver()
    assert d.supports_break_in is False
    with pytest.raises(DebuggerError, match="minimal driver cannot break in"):
        d.break_in(1.0)
    assert d.set_filter({"op": "type", "names": ["X"]}) is False
    assert d.take_filtered() == []
    assert d.stop_stack(1, 10, 1.0) is None
    assert d.kill_target() is False
    assert d.target_stderr is None
    assert d.local_process is False
    assert (d.sos_prefix, d.threads_command) == ("", "threads")


def test_one_time_limit_convention() -> None:
    assert resolve_timeout(DEFAULT, 60.0) == 60.0  # left out: the owner's command_timeout
    assert resolve_timeout(None, 60.0) is None  # no limit
    assert resolve_timeout(2.5, 60.0) == 2.5
    assert repr(DEFAULT) == "DEFAULT"


def test_session_uses_the_contract_not_the_drivers_name() -> None:
    d = MinimalDriver()
    d.sos_prefix, d.threads_command = "!", "clrthreads"
    session = Session(d, command_timeout=7.0)
    session.threads()
    session.sos("pe", None)
    assert d.commands == ["!clrthreads", "!pe"]
    assert d.timeouts == [7.0, None]  # the session's command_timeout for DEFAULT; None stays "no limit"
    with pytest.raises(DebuggerError, match="cannot break in"):
        session.break_in(1.0)
    assert session.set_filter(None) is False
    session.close()


def test_the_session_feels_out_no_driver_ability() -> None:
    source = inspect.getsource(Session)
    assert "getattr(self.driver" not in source and "driver.name ==" not in source


@pytest.mark.parametrize(
    "module, cls",
    [
        ("pydbgauto.drivers.lldb", "LldbDriver"),
        ("pydbgauto.drivers.cdb", "CdbDriver"),
        ("pydbgauto.drivers.pykd_driver", "PykdDriver"),
        ("tests.doubles.replay_driver", "ReplayDriver"),
    ],
)
def test_every_driver_is_a_driver(module: str, cls: str) -> None:
    import importlib

    klass: Any = getattr(importlib.import_module(module), cls)
    assert issubclass(klass, Driver) and not inspect.isabstract(klass)
