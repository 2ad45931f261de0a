"""Finding cdb.exe and the default symbol path (pure: the file system is passed in)."""

from __future__ import annotations

import pytest

from pydbgauto.drivers.cdb_locate import cdb_candidates, default_symbol_path, find_cdb
from pydbgauto.errors import DebuggerNotFoundError

WIN_ENV = {
    "ProgramFiles(x86)": r"C:\Program Files (x86)",
    "ProgramFiles": r"C:\Program Files",
    "LOCALAPPDATA": r"C:\Users\ann\AppData\Local",
}

# -- locating cdb -----------------------------------------------------------------------------


def test_candidates_order_kits_then_store() -> None:
    c = cdb_candidates(WIN_ENV, machine="AMD64")
    assert c[0] == r"C:\Program Files (x86)\Windows Kits\10\Debuggers\x64\cdb.exe"
    assert c[1] == r"C:\Program Files (x86)\Windows Kits\10\Debuggers\x86\cdb.exe"
    assert r"C:\Program Files\Windows Kits\10\Debuggers\x64\cdb.exe" in c
    assert c.index(r"C:\Program Files (x86)\Windows Kits\8.1\Debuggers\x64\cdb.exe") > c.index(
        r"C:\Program Files\Windows Kits\10\Debuggers\x64\cdb.exe"
    )
    assert c[-4] == r"C:\Users\ann\AppData\Local\Microsoft\WindowsApps\cdbX64.exe"


def test_candidates_arm64_first() -> None:
    c = cdb_candidates(WIN_ENV, machine="ARM64")
    assert c[0].endswith(r"Debuggers\arm64\cdb.exe")


def test_explicit_and_cdb_path_come_first() -> None:
    env = dict(WIN_ENV, CDB_PATH=r"D:\dbg")
    c = cdb_candidates(env, explicit=r"E:\tools\cdb.exe")
    assert c[:2] == [r"E:\tools\cdb.exe", r"D:\dbg\cdb.exe"]


def test_find_cdb_path_then_kits() -> None:
    kits = r"C:\Program Files (x86)\Windows Kits\10\Debuggers\x86\cdb.exe"
    assert find_cdb(env=WIN_ENV, exists=lambda p: p == kits, which=lambda n: None) == kits
    assert (
        find_cdb(env=WIN_ENV, exists=lambda p: p == kits, which=lambda n: r"C:\bin\cdb.exe")
        == r"C:\bin\cdb.exe"
    )


def test_find_cdb_not_found_lists_places_and_install_hint() -> None:
    with pytest.raises(DebuggerNotFoundError) as e:
        find_cdb(env=WIN_ENV, exists=lambda p: False, which=lambda n: None)
    text = str(e.value)
    assert r"Windows Kits\10\Debuggers\x64\cdb.exe" in text and "WindowsApps" in text
    assert "Debugging Tools for Windows" in text and "winget install Microsoft.WinDbg" in text


def test_find_cdb_explicit_must_exist() -> None:
    with pytest.raises(DebuggerNotFoundError, match=r"E:\\nope\\cdb.exe"):
        find_cdb(r"E:\nope\cdb.exe", env=WIN_ENV, exists=lambda p: False, which=lambda n: "/usr/bin/cdb")


def test_default_symbol_path() -> None:
    assert default_symbol_path({"_NT_SYMBOL_PATH": r"srv*X:\s"}) == r"srv*X:\s"
    assert default_symbol_path(WIN_ENV) == (
        r"srv*C:\Users\ann\AppData\Local\pydbgauto\symbols*https://msdl.microsoft.com/download/symbols"
    )
