"""The ``pydbgauto`` command without a debugger: argument parsing, --help, the exit codes of bad input,
``parse`` on recorded SOS text, and the watch options shared by the single and the every-process watch.
(Runs that need lldb are in tests/integration and tests/test_analyze.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from pydbgauto import cli
from pydbgauto.cli import exits
from pydbgauto.cli.watch import exit_code, watch_options
from pydbgauto.models import CaptureRecord, DecisionRecord, DumpRecord, StopEvent
from pydbgauto.sos import parse_pe

ROOT = Path(__file__).resolve().parents[1]
PE = ROOT / "tests" / "transcripts" / "lldb" / "pe-bare-net8-format.txt"
SUBCOMMANDS = ["watch", "parse", "analyze", "doctor", "dump", "survey"]


def _main(argv: List[str], capsys: pytest.CaptureFixture) -> Tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pydbgauto") and all(name in out for name in SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: pydbgauto {name}")


def test_no_subcommand_is_usage(capsys):
    code, out, _ = _main([], capsys)
    assert code == exits.EXIT_USAGE == 2 and out.startswith("usage: pydbgauto")


def test_python_dash_m_and_the_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "pydbgauto", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: pydbgauto"), done.stderr
    entry = [line for line in (ROOT / "setup.cfg").read_text().splitlines() if "pydbgauto.cli:main" in line]
    assert entry and callable(cli.main)


def test_exit_codes_are_the_documented_ones():
    documented = (ROOT / "docs" / "cli.md").read_text()
    codes = (exits.EXIT_OK, exits.EXIT_NO_MATCH, exits.EXIT_USAGE, exits.EXIT_TARGET)
    assert codes + (exits.EXIT_DEBUGGER, exits.EXIT_DUMP, exits.EXIT_INTERRUPTED) == (0, 1, 2, 3, 4, 5, 130)
    assert "130" in documented


# ----- parse ------------------------------------------------------------------------------------------


def test_parse_prints_the_parsed_text_as_json(capsys):
    code, out, _ = _main(["parse", "pe", str(PE)], capsys)
    assert code == 0
    expected = parse_pe(PE.read_text())
    assert expected is not None
    data = json.loads(out)
    assert data["type"] == expected.type == "System.FormatException" and data["address"] == expected.address
    assert "raw" not in data


def test_parse_of_a_missing_file_is_usage(tmp_path, capsys):
    code, _, err = _main(["parse", "pe", str(tmp_path / "missing.txt")], capsys)
    assert code == 2 and "cannot read" in err


def test_parse_of_no_current_exception_prints_null(tmp_path, capsys):
    text = tmp_path / "none.txt"
    text.write_text("There is no current managed exception on this thread\n")
    code, out, _ = _main(["parse", "pe", str(text)], capsys)
    assert (code, out.strip()) == (0, "null")


def test_parse_refuses_an_unknown_kind(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["parse", "gcroot", str(PE)])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


# ----- watch: refused before any debugger starts -------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["watch"], "give exactly one target"),
        (["watch", "--pid", "1", "--", "/bin/true"], "give exactly one target"),
        (["watch", "--pid", "1", "--wait"], "--wait goes with --name"),
        (["watch", "--pid", "1", "--when", "nocolon"], "--when takes MODULE:FUNCTION"),
        (["watch", "--pid", "1", "--when", "pdaNoSuchModuleZ:f"], "cannot import pdaNoSuchModuleZ"),
        (["watch", "--pid", "1", "--when", "os:sep"], "is not callable"),
    ],
)
def test_watch_bad_input_is_usage(argv, message, capsys):
    code, _, err = _main(argv, capsys)
    assert code == 2 and message in err


def test_watch_refuses_two_targets_and_a_bad_size(capsys):
    for argv in (["watch", "--pid", "1", "--name", "x"], ["watch", "--pid", "1", "--min-free-disk", "12Q"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    assert "is not a size" in capsys.readouterr().err


def test_watch_options_are_one_set_for_both_watches():
    args = cli._parser().parse_args(
        ["watch", "--name", "App", "--wait", "--max-dumps", "0", "--no-dedupe", "--min-free-disk", "2G"]
    )
    options = watch_options(args, None, print)
    assert options == dict(
        wait=True,
        when=None,
        dump_dir=".",
        max_dumps=None,
        skip_first=0,
        cooldown=0.0,
        dedupe=False,
        timeout=None,
        verify=True,
        debugger=None,
        on_event=print,
        live=False,
        min_free_disk=2 << 30,
    )
    plain = watch_options(cli._parser().parse_args(["watch", "--pid", "5"]), None, print)
    assert "min_free_disk" not in plain and plain["max_dumps"] == 1 and plain["dedupe"] is True


def test_the_predicate_the_options_describe():
    exc = parse_pe(PE.read_text())
    assert exc is not None
    event = StopEvent(kind="first-chance", thread_id=1, exception_address=exc.address, exception=exc)
    parse = cli._parser().parse_args
    assert cli.build_predicate(parse(["watch", "--pid", "1"])) is None
    match = cli.build_predicate(parse(["watch", "--pid", "1", "--type", "System.FormatException"]))
    assert match is not None and match(event)
    either = ["--type", "System.TimeoutException", "--type", "System.FormatException", "--first-chance"]
    predicate = cli.build_predicate(parse(["watch", "--pid", "1"] + either))
    assert predicate is not None and predicate(event)
    none = cli.build_predicate(
        parse(["watch", "--pid", "1", "--type", "System.FormatException", "--second-chance"])
    )
    assert none is not None and not none(event)


def _capture(dump: "DumpRecord | None") -> CaptureRecord:
    return CaptureRecord(
        event=StopEvent(kind="first-chance"),
        decision=DecisionRecord(action="dump", reason="matched"),
        dump=dump,
    )


def test_watch_exit_codes_from_its_captures():
    args = cli._parser().parse_args(["watch", "--pid", "1"])
    unverified = DumpRecord(path="/d.core", size=1, seconds=0.1)
    verified = DumpRecord(path="/d.core", size=1, seconds=0.1, verified=True)
    assert exit_code(args, []) == exits.EXIT_NO_MATCH
    assert exit_code(args, [_capture(verified)]) == exits.EXIT_OK
    assert exit_code(args, [_capture(verified), _capture(unverified)]) == exits.EXIT_DUMP
    assert exit_code(args, [_capture(None)]) == exits.EXIT_DUMP
    no_verify = cli._parser().parse_args(["watch", "--pid", "1", "--no-verify"])
    assert exit_code(no_verify, [_capture(unverified)]) == exits.EXIT_OK


# ----- analyze: refused before any reader starts --------------------------------------------------------


def test_analyze_bad_input(tmp_path, capsys):
    code, _, err = _main(["analyze", str(tmp_path / "missing.core")], capsys)
    assert code == 2 and "does not exist" in err
    empty = tmp_path / "empty.core"
    empty.write_bytes(b"")
    code, _, err = _main(["analyze", str(empty)], capsys)
    assert code == 5 and "is empty" in err
    code, _, err = _main(["analyze", str(tmp_path), "--timeout", "0"], capsys)
    assert code == 2 and "timeout must be positive" in err
    with pytest.raises(SystemExit):
        cli.main(["analyze", str(empty), "--reader", "gdb"])


def _printed(*events: Tuple[StopEvent, DecisionRecord]) -> List[str]:
    import io

    from pydbgauto.cli.printer import Printer

    out = io.StringIO()
    printer = Printer(out, as_json=False)
    for event, decision in events:
        printer("decision", {"event": event, "decision": decision})
    return out.getvalue().splitlines()


def test_a_message_of_several_lines_is_printed_on_one():
    from pydbgauto.models import ManagedException

    exc = ManagedException(address=0x10, type="System.Exception", message='one "é"\ntwo\r\tthree\x1b[31m')
    event = StopEvent(kind="first-chance", sequence=1, thread_id=7, exception=exc)
    lines = _printed((event, DecisionRecord(action="skip", reason="no-match")))
    assert lines == [
        '#1 first-chance System.Exception thread 0x7: one "é"\\ntwo\\r\\tthree\\x1b[31m -> skip (no-match)'
    ]


def test_an_exit_whose_status_lldb_lost_says_so():
    lost = StopEvent(kind="exit", sequence=3, description="lldb lost it: lost connection")
    known = StopEvent(kind="exit", sequence=4, exit_status=0)
    lines = _printed(*[(e, DecisionRecord(action="skip", reason="no-match")) for e in (lost, known)])
    assert lines == [
        "#3 the target exited; its exit status is unknown (lldb lost it: lost connection)",
        "#4 the target exited with status 0",
    ]


def test_a_launched_targets_output_is_printed_as_it_is(capsys):
    import io

    from pydbgauto.cli.printer import Printer

    out = io.StringIO()
    Printer(out, as_json=False)("target-output", {"stream": "stdout", "text": "READY 1\nprompt> "})
    Printer(out, as_json=False)("target-output", {"stream": "stderr", "text": "warn: x\n"})
    assert out.getvalue() == "READY 1\nprompt> \n" and capsys.readouterr().err == "warn: x\n"
    out = io.StringIO()
    Printer(out, as_json=True)("target-output", {"stream": "stderr", "text": "warn: x\n"})
    assert json.loads(out.getvalue()) == {"event": "target-output", "stream": "stderr", "text": "warn: x\n"}
