"""exception_layout.py: System.Exception's offsets kept with the runtime's files, whole and unambiguous."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, List, Optional, Tuple

import pytest

from pydbgauto.drivers.lldb import exception_layout

ROWS: List[Tuple[str, Optional[int]]] = [
    ("_message", 0x18),
    ("_HResult", 0x84),
    ("_innerException", 0x20),
    ("_stackTrace", 0x30),
    ("_stackTraceString", 0x38),
    ("_remoteStackTraceString", 0x40),
    ("_data", 0x28),
]


class AgentDouble:
    """Test double of the agent: only ``_runtime_module``, with a stand-in for lldb's SBModule (no lldb)."""

    def __init__(self, coreclr: Optional[str]) -> None:
        self.coreclr = coreclr

    def _runtime_module(self) -> Any:
        if self.coreclr is None:
            return None
        return SimpleNamespace(GetFileSpec=lambda: SimpleNamespace(fullpath=self.coreclr))


@pytest.fixture
def runtime(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYDBGAUTO_NO_SCAN_CACHE", raising=False)
    folder = tmp_path / "shared" / "Microsoft.NETCore.App" / "10.0.0"
    folder.mkdir(parents=True)
    (folder / "libcoreclr.so").write_bytes(b"elf")
    (folder / exception_layout.CORELIB).write_bytes(b"pe")
    return folder


def test_offsets_kept_are_read_by_the_next_session(runtime) -> None:
    agent = AgentDouble(str(runtime / "libcoreclr.so"))
    assert exception_layout.kept(agent) is None
    exception_layout.keep(agent, ROWS)
    kept = exception_layout.kept(AgentDouble(str(runtime / "libcoreclr.so")))
    assert kept == {name: offset for name, offset in ROWS if name in exception_layout.FIELDS}


def test_a_changed_corelib_is_asked_again(runtime) -> None:
    agent = AgentDouble(str(runtime / "libcoreclr.so"))
    exception_layout.keep(agent, ROWS)
    (runtime / exception_layout.CORELIB).write_bytes(b"another build")
    assert exception_layout.kept(agent) is None


def test_a_partial_or_ambiguous_table_is_not_kept(runtime) -> None:
    agent = AgentDouble(str(runtime / "libcoreclr.so"))
    exception_layout.keep(agent, ROWS[:3])  # a field missing
    assert exception_layout.kept(agent) is None
    exception_layout.keep(agent, ROWS + [("_message", 0x90)])  # a derived type's own _message
    assert exception_layout.kept(agent) is None


def test_no_runtime_files_no_cache(runtime) -> None:
    exception_layout.keep(AgentDouble(None), ROWS)
    assert exception_layout.kept(AgentDouble(None)) is None
    (runtime / exception_layout.CORELIB).unlink()  # a runtime whose CoreLib is not beside it
    agent = AgentDouble(str(runtime / "libcoreclr.so"))
    exception_layout.keep(agent, ROWS)
    assert exception_layout.kept(agent) is None
