"""The pykd driver against a stand-in ``pykd`` module (a TEST DOUBLE: canned replies written from
documentation, see tests/transcripts/cdb-replay/README.md). Real pykd only runs on Windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pydbgauto.drivers.base import Driver, StopKind, Target
from pydbgauto.drivers.pykd_driver import PykdDriver
from pydbgauto.errors import DebuggerNotFoundError, DumpError, NotDotnetError, UnsafeInputError

LM = "start end module name\n00007ffe`0a1d0000 00007ffe`0a5e5000   coreclr    (deferred)\n"


class FakePykd:
    """Test double of the pykd module: records commands, answers from a table."""

    def __init__(self, replies: dict[str, str], embedded: bool = False) -> None:
        self.replies = replies
        self.commands: list[str] = []
        self.calls: list[str] = []
        self._embedded = embedded

    def isWindbgExt(self) -> bool:
        return self._embedded

    def initialize(self) -> None:
        self.calls.append("initialize")

    def attachProcess(self, pid: int) -> None:
        self.calls.append(f"attach {pid}")

    def detachAllProcesses(self) -> None:
        self.calls.append("detach")

    def go(self) -> None:
        self.calls.append("go")

    def dbgCommand(self, command: str) -> str:
        self.commands.append(command)
        if command.startswith(".dump"):
            path = command.split('"')[1]
            Path(path).write_bytes(b"MDMP")
            return f"Creating {path} - mini user dump\nDump successfully written\n"
        return self.replies.get(command, "")


def test_standalone_attach_stop_dump_detach(tmp_path: Path) -> None:
    fake = FakePykd(
        {
            "lm": LM,
            ".lastevent": "Last event: 1a2c.2d00: CLR exception - code e0434352 (first chance)\n",
            "!pe": "0:000> Exception object: 000001d2a4c0f2e8\n",
        }
    )
    d = PykdDriver(Target(pid=0x1A2C), pykd_module=fake)
    assert isinstance(d, Driver)
    d.start()
    assert fake.calls[:2] == ["initialize", f"attach {0x1A2C}"]
    assert ".loadby sos coreclr" in fake.commands
    d.arm_clr_exceptions()
    assert fake.commands[-3:] == ["sxe clr", "sxe e0434352", "sxe e0434f4d"]
    stop = d.resume(None)
    assert stop.kind is StopKind.FIRST_CHANCE and stop.thread_id == 0x2D00
    assert d.execute("!pe") == "Exception object: 000001d2a4c0f2e8"
    d.execute("!clrstack", thread_id=0x2D00)
    assert fake.commands[-1] == "~~[0x2d00]e !clrstack"
    with pytest.raises(UnsafeInputError):
        d.execute(".shell calc", thread_id=0x2D00)  # checked before the thread prefix is added
    path = tmp_path / "x.dmp"
    d.write_dump(str(path), None)
    assert fake.commands[-1] == f'.dump /ma "{path}"'
    with pytest.raises(DumpError, match="already exists"):
        d.write_dump(str(path), None)
    with pytest.raises(UnsafeInputError):
        d.execute(".shell calc")
    with pytest.raises(UnsafeInputError):
        d.execute("q", allow_dangerous=True)
    d.close()
    assert fake.calls[-1] == "detach"


def test_embedded_never_detaches() -> None:
    fake = FakePykd({"lm": LM}, embedded=True)
    d = PykdDriver(pykd_module=fake)
    d.start()
    assert "initialize" not in fake.calls
    d.close()
    assert "detach" not in fake.calls


def test_not_dotnet() -> None:
    with pytest.raises(NotDotnetError):
        PykdDriver(Target(pid=1), pykd_module=FakePykd({"lm": ""})).start()


def test_missing_pykd(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pykd(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pykd":
            raise ImportError("no pykd")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pykd)
    with pytest.raises(DebuggerNotFoundError, match="pip install pykd"):
        PykdDriver(Target(pid=1))
