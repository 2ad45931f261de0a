"""The pure parts of the cdb driver: locator, command line, SOS selection, type filter, prompts, safety."""

from __future__ import annotations

import pytest

from pydbgauto.drivers.base import StopKind, Target
from pydbgauto.drivers.cdb import (
    build_command_line,
    classify_stop,
    sos_load_commands,
    thread_command,
    type_filter_command,
)
from pydbgauto.drivers.cdb_locate import cdb_candidates, default_symbol_path, find_cdb
from pydbgauto.drivers.cdb_prompt import (
    clean_reply,
    detect_runtime,
    ends_with_prompt,
    marker_command,
    strip_prompts,
)
from pydbgauto.drivers.cdb_safety import (
    check_command,
    check_dump_path,
    check_symbol_path,
    check_type_name,
)
from pydbgauto.drivers.framing import ReplyBuffer
from pydbgauto.errors import ConfigurationError, DebuggerNotFoundError, UnsafeInputError

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


# -- command line -----------------------------------------------------------------------------

SYM = r"srv*C:\sym*https://msdl.microsoft.com/download/symbols"


def test_command_line_attach_pid() -> None:
    argv = build_command_line("cdb.exe", Target(pid=42), symbol_path=SYM, init_file=r"C:\t\e.ini")
    assert argv == ["cdb.exe", "-pd", "-noshell", "-cf", r"C:\t\e.ini", "-lines", "-y", SYM, "-p", "42"]


def test_command_line_attach_name_and_launch() -> None:
    argv = build_command_line("cdb.exe", Target(name="app.exe"), symbol_path=SYM, init_file="e")
    assert argv[-2:] == ["-pn", "app.exe"] and "-pd" in argv
    argv = build_command_line("cdb.exe", Target(argv=("app.exe", "a b", "c")), symbol_path=SYM, init_file="e")
    assert argv[-6:] == ["-2", "-noinh", "-hd", "app.exe", "a b", "c"]
    assert argv.index("-pd") < argv.index("app.exe")  # the exe comes last


@pytest.mark.parametrize(
    "target",
    [
        Target(pid=-1),
        Target(pid=0),
        Target(name='x.exe" -c ".shell'),
        Target(argv=()),
        Target(argv=("a\nb",)),
    ],
)
def test_command_line_refuses_bad_targets(target: Target) -> None:
    with pytest.raises(ConfigurationError):
        build_command_line("cdb.exe", target, symbol_path=SYM, init_file="e")


# -- SOS selection and type filter --------------------------------------------------------------


def test_sos_selection() -> None:
    assert sos_load_commands("clr", None) == [".loadby sos clr"]
    assert sos_load_commands("mscorwks", "/ignored") == [".loadby sos mscorwks"]
    assert sos_load_commands("coreclr", None) == [".loadby sos coreclr"]
    with pytest.raises(ConfigurationError):
        sos_load_commands("mono", None)


def test_type_filter_text() -> None:
    text = type_filter_command(["System.IO.IOException"], derived=False)
    assert (
        text == "!soe System.IO.IOException 1;.if((@$t1)==0) {g} .else {.echo 'pydbgauto: type filter hit'}"
    )
    assert '"' not in type_filter_command(["A", "B.C`1[[D]]"], derived=True)
    with pytest.raises(ConfigurationError):
        type_filter_command([f"T{i}" for i in range(20)], derived=False)


# -- prompts and framing ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0:000> ", "x\r\n1:019> ", "ok\n0:000:x86> ", "?:???> "])
def test_ends_with_prompt(text: str) -> None:
    assert ends_with_prompt(text)


@pytest.mark.parametrize("text", ["0:000>", "value 0:000> x", "", "(lldb) "])
def test_not_a_prompt(text: str) -> None:
    assert not ends_with_prompt(text)


def test_strip_prompts_and_clean() -> None:
    assert strip_prompts("0:000> 0:000> a\n0:000> b") == "a\nb"
    assert clean_reply("0:000> x***** WARNING: Unable to verify checksum for a.dll\r\ny\r\n0:000> ") == "x**y"


def test_marker_command_does_not_contain_the_marker_but_prints_it() -> None:
    line = marker_command("0123456789abcdef", end=False)
    assert "@@PDA-START" not in line
    printed = "@" + line.split('"')[1][2:].replace("\\n", "\n")  # what '%c' with 0x40 gives
    buf = ReplyBuffer()
    buf.feed("0:000> " + printed + "0:000> body\n0:000> ")
    end = marker_command("0123456789abcdef", end=True)
    buf.feed("@" + end.split('"')[1][2:].replace("\\n", "\n"))
    reply = buf.take("0123456789abcdef")
    assert reply is not None and clean_reply(reply.body) == "body"


def test_detect_runtime() -> None:
    lm = (
        "start             end                 module name\n"
        "00007ff6`4a3b0000 00007ff6`4a3d8000   app   (deferred)\n"
        "00007ffe`0a1d0000 00007ffe`0a5e5000   clr    (deferred)\n"
    )
    assert detect_runtime(lm) == "clr"
    assert detect_runtime(lm.replace(" clr ", " mscorwks ")) == "mscorwks"
    assert detect_runtime(lm.replace(" clr ", " clrjit ")) is None
    assert detect_runtime("01000000 01010000   coreclr    (deferred)") == "coreclr"


def test_classify_stop_forms() -> None:
    s = classify_stop("(1a.2b): CLR exception - code e0434f4d (first chance)\n", "")
    assert s.kind is StopKind.FIRST_CHANCE and s.thread_id == 0x2B
    s = classify_stop("", "Last event: 1a.2b: Access violation - code c0000005 (!!! second chance !!!)")
    assert s.kind is StopKind.SECOND_CHANCE
    s = classify_stop("", "Last event: 1a.2b: Break instruction exception - code 80000003 (first chance)")
    assert s.kind is StopKind.OTHER
    s = classify_stop("", "Last event: 1a.2b: Exit process 0:1a, code 0")
    assert s.kind is StopKind.EXIT and s.exit_status == 0
    assert classify_stop("       ^ No runnable debuggees error in 'g'", "").kind is StopKind.EXIT


# -- safety ---------------------------------------------------------------------------------------


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


def test_thread_command() -> None:
    assert thread_command("!clrstack", 0x2D00) == "~~[0x2d00]e !clrstack"
    assert thread_command(" !clrstack -a ", 1) == "~~[0x1]e !clrstack -a"
    for bad in (0, -1, True, 0x1_0000_0000, "2d00"):
        with pytest.raises(ConfigurationError):
            thread_command("!clrstack", bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        thread_command("~*e !clrstack", 5)
