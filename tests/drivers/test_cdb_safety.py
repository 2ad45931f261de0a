"""The checks every user string passes before it reaches cdb."""

from __future__ import annotations

import pytest

from pydbgauto.drivers.cdb_safety import (
    check_command,
    check_dump_path,
    check_symbol_path,
    check_type_name,
)
from pydbgauto.errors import UnsafeInputError

SYM = r"srv*C:\sym*https://msdl.microsoft.com/download/symbols"


@pytest.mark.parametrize(
    "path",
    [r"C:\dumps\app 1.dmp", r"\\server\share\x.dmp", "D:/d/x.dmp"],
)
def test_good_dump_paths(path: str) -> None:
    assert check_dump_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        r'C:\a";.shell calc;".dmp',
        r"C:\a;b.dmp",
        r"C:\a$$b.dmp",
        r"C:\%TEMP%\a.dmp",
        "C:\\a\n.dmp",
        r"relative\a.dmp",
        r"C:\a\..\b.dmp",
        r"C:\a.dmp:stream",
        r"C:\dir\\",
        r"C:\a{b}.dmp",
        r"C:\a`b.dmp",
        r"C:\a@b.dmp",
        "",
    ],
)
def test_bad_dump_paths(path: str) -> None:
    with pytest.raises(UnsafeInputError):
        check_dump_path(path)


def test_posix_dump_paths_only_for_the_double() -> None:
    assert check_dump_path("/tmp/x.dmp", windows=False) == "/tmp/x.dmp"
    with pytest.raises(UnsafeInputError):
        check_dump_path("/tmp/x.dmp", windows=True)


@pytest.mark.parametrize(
    "name", ["System.Exception", "A.B+C", "System.Collections.Generic.List`1[[System.Int32]]"]
)
def test_good_type_names(name: str) -> None:
    assert check_type_name(name) == name


@pytest.mark.parametrize("name", ["", "1abc", "A;B", 'A"B', "A B", "A$$B", "A\nB", "A{g}", "x" * 600])
def test_bad_type_names(name: str) -> None:
    with pytest.raises(UnsafeInputError):
        check_type_name(name)


def test_symbol_paths() -> None:
    assert check_symbol_path(SYM + r";C:\more") == SYM + r";C:\more"
    for bad in ['srv*"x"', "a\nb", "srv*$$x", "%TEMP%", "   "]:
        with pytest.raises(UnsafeInputError):
            check_symbol_path(bad)


@pytest.mark.parametrize(
    "command", ["!pe", "!clrstack -f", "!sos.dumpheap -stat", "~0s", "lm", "!pe -nested", "kb 20"]
)
def test_allowed_commands(command: str) -> None:
    assert check_command(command) == command


@pytest.mark.parametrize(
    "command",
    [
        ".shell dir",
        ".SHELL dir",
        "!pe;.shell dir",
        "!pe ; q",
        "qq",
        ".create x",
        "$<C:\\x.txt",
        "$$>a<C:\\x.txt",
        "!pe $$ hidden",
        ".logopen C:\\x",
        ".writemem C:\\x 0 1",
        ".load C:\\evil.dll",
        ".loadby sos clr",
        "gh",
        "p",
        'sxe -c "g" clr',
        "!soe -create System.Exception 1",
        '.printf "x"',
        "as foo .shell",
        "~*e .shell",
        "~3e g",
        ".detach",
        ".abandon",
    ],
)
def test_refused_commands(command: str) -> None:
    with pytest.raises(UnsafeInputError):
        check_command(command)


def test_dangerous_allowed_on_request_but_never_line_breaks_or_markers() -> None:
    assert check_command(".shell dir", allow_dangerous=True) == ".shell dir"
    for bad in ["!pe\r\n.shell", "!pe\x00", ".echo @@PDA-END 0123456789abcdef ok@@"]:
        with pytest.raises(UnsafeInputError):
            check_command(bad, allow_dangerous=True)
