"""The cdb commands both cdb drivers send, and what they read back (pure, but for the dump file)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from pydbgauto.drivers.base import StopKind, Target
from pydbgauto.drivers.cdb_commands import (
    arm_commands,
    build_command_line,
    classify_stop,
    disarm_commands,
    dump_command,
    load_sos_with,
    process_id,
    sos_load_commands,
    thread_command,
    type_filter_command,
    type_filter_commands,
    user_command,
    write_dump_with,
)
from pydbgauto.errors import ConfigurationError, DumpError, SosError, UnsafeInputError

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


def test_process_id_from_the_reply_to_pipe_dot() -> None:
    assert process_id(".  0\tid: 1a2c\tattach\tname: C:\\app\\App.exe") == 0x1A2C
    assert process_id("no process") is None


def test_load_sos_with_returns_the_command_and_refuses_a_failed_load() -> None:
    sent: List[str] = []

    def ok(command: str) -> str:
        sent.append(command)
        return ""

    assert load_sos_with(ok, "clr", None) == ".loadby sos clr" and sent == [".loadby sos clr"]
    failing = "The call to LoadLibrary(sos) failed, Win32 error 0n2"
    with pytest.raises(SosError, match="dotnet-sos install"):
        load_sos_with(lambda command: failing, "coreclr", None)


# -- CLR exception breaks and the type filter ------------------------------------------------------


def test_arm_and_disarm_name_every_clr_filter() -> None:
    assert arm_commands() == ["sxe clr", "sxe e0434352", "sxe e0434f4d"]
    disarm = disarm_commands()
    assert disarm[:3] == ['sx- -c "" clr', 'sx- -c "" e0434352', 'sx- -c "" e0434f4d']  # no filter left
    assert disarm[3:] == ["sxd clr", "sxd e0434352", "sxd e0434f4d"]  # second chance still stops


def test_type_filter_commands_set_and_clear() -> None:
    text = type_filter_command(["System.IO.IOException"], derived=False)
    assert type_filter_commands(["System.IO.IOException"], derived=False) == [
        f'sxe -c "{text}" {f}' for f in ("clr", "e0434352", "e0434f4d")
    ]
    assert type_filter_commands([], derived=False) == [
        'sx- -c "" clr',
        'sx- -c "" e0434352',
        'sx- -c "" e0434f4d',
    ]
    with pytest.raises(UnsafeInputError):
        type_filter_commands(['System.Exception"; .shell calc; "'], derived=False)


# -- stops ------------------------------------------------------------------------------------


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


# -- the user's commands and dumps ---------------------------------------------------------------


def test_thread_command() -> None:
    assert thread_command("!clrstack", 0x2D00) == "~~[0x2d00]e !clrstack"
    assert thread_command(" !clrstack -a ", 1) == "~~[0x1]e !clrstack -a"
    for bad in (0, -1, True, 0x1_0000_0000, "2d00"):
        with pytest.raises(ConfigurationError):
            thread_command("!clrstack", bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        thread_command("~*e !clrstack", 5)


def test_user_command_checks_before_the_thread_prefix_and_refuses_quit_when_asked() -> None:
    assert user_command("!pe", thread_id=None, allow_dangerous=False, refuse_quit=None) == "!pe"
    assert (
        user_command("!clrstack", thread_id=0x2D00, allow_dangerous=False, refuse_quit=None)
        == "~~[0x2d00]e !clrstack"
    )
    with pytest.raises(UnsafeInputError):
        user_command(".shell calc", thread_id=0x2D00, allow_dangerous=False, refuse_quit=None)
    assert user_command("q", thread_id=None, allow_dangerous=True, refuse_quit=None) == "q"  # launch mode
    with pytest.raises(UnsafeInputError, match="attached"):
        user_command(" QQ ", thread_id=None, allow_dangerous=True, refuse_quit="ends an attached target")


def test_dump_command_quotes_the_path_and_checks_the_options() -> None:
    assert dump_command("/tmp/a b.dmp") == '.dump /ma "/tmp/a b.dmp"'
    assert dump_command("/tmp/a.dmp", "/mA") == '.dump /mA "/tmp/a.dmp"'
    with pytest.raises(ConfigurationError, match="dump options"):
        dump_command("/tmp/a.dmp", "/o")
    with pytest.raises(UnsafeInputError):
        dump_command('/tmp/a";.shell calc;".dmp')


def test_write_dump_with_checks_the_reply_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.dmp"
    sent: List[str] = []

    def writes(command: str) -> str:
        sent.append(command)
        path.write_bytes(b"MDMP")
        return f"Creating {path} - mini user dump\nDump successfully written\n"

    write_dump_with(writes, str(path), "/ma", debugger="cdb")
    assert sent == [f'.dump /ma "{path}"']
    with pytest.raises(DumpError, match="already exists"):
        write_dump_with(writes, str(path), "/ma", debugger="cdb")
    assert len(sent) == 1  # refused before anything was sent

    other = tmp_path / "y.dmp"
    denied = f"Creating {other} - mini user dump\nDump creation failed, Win32 error 0n5\n"
    with pytest.raises(DumpError, match="pykd could not write .*Win32 error 0n5"):
        write_dump_with(lambda command: denied, str(other), "/ma", debugger="pykd")
    said = f"Creating {other} - mini user dump\nDump successfully written\n"
    with pytest.raises(DumpError, match="does not exist"):
        write_dump_with(lambda command: said, str(other), "/ma", debugger="cdb")
    with pytest.raises(DumpError, match="not understood"):
        write_dump_with(lambda command: "what?", str(other), "/ma", debugger="cdb")

    def empty(command: str) -> str:
        other.write_bytes(b"")
        return said

    with pytest.raises(DumpError, match="is empty"):
        write_dump_with(empty, str(other), "/ma", debugger="cdb")
