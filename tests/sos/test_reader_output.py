"""Cutting the readers' output apart (pydbgauto.sos.reader_output), from text recorded by real reader runs
on real dumps (tests/transcripts/readers/, scripts/record-reader-transcripts). Pure: runs anywhere.

Each recorded run comes with what the dump must show (its .json): the pieces the functions cut must parse
into exactly that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from pydbgauto.sos import parse_clrstack, parse_clrstack_all, parse_pe, parse_threads
from pydbgauto.sos import reader_output as ro

ROOT = Path(__file__).resolve().parents[2]
READERS = ROOT / "tests" / "transcripts" / "readers"
CDB_DOCUMENTED = ROOT / "tests" / "transcripts" / "cdb-replay"
RUNS = sorted(p.name[: -len(".json")] for p in READERS.glob("*.json"))


def _runs(prefix: str) -> List[str]:
    found = [name for name in RUNS if name.startswith(prefix)]
    assert found, f"no recorded {prefix}* run in {READERS}: run scripts/record-reader-transcripts"
    return found


def _load(name: str) -> Tuple[str, str, Dict[str, Any]]:
    out = (READERS / f"{name}.stdout.txt").read_text()
    err = (READERS / f"{name}.stderr.txt").read_text()
    return out, err, json.loads((READERS / f"{name}.json").read_text())


def test_every_kind_of_run_is_recorded_for_both_runtimes_and_cases():
    kinds = ["dotnet-dump-verify", "dotnet-dump-overview", "dotnet-dump-exceptions", "lldb-overview"]
    kinds.append("lldb-exceptions")
    for kind in kinds:
        for tag in ("net8-crash", "net8-first-chance", "net10-crash", "net10-first-chance"):
            assert f"{kind}-{tag}" in RUNS


# ----- dotnet-dump: verify_dump's pe + clrthreads + clrstack -------------------------------------


@pytest.mark.parametrize("name", _runs("dotnet-dump-verify-"))
def test_verify_run_cuts_into_pe_threads_and_stack(name: str) -> None:
    out, err, meta = _load(name)
    assert meta["commands"][:2] == ["pe", "clrthreads"]
    pe_text, threads_text, stack_text = ro.split_dotnet_dump(out + err)
    exc = parse_pe(pe_text)
    # a bare pe at the stop: the dump's default thread is the stopped one, its exception the event's
    assert exc is not None and exc.type == meta["exception_type"]
    assert exc.address == meta["exception_address"]
    assert "ThreadCount:" not in pe_text and "OS Thread Id:" not in pe_text
    table = parse_threads(threads_text)
    assert meta["thread_id"] in [t.os_id for t in table.threads]
    assert "Exception object:" not in threads_text and "OS Thread Id:" not in threads_text
    stack = parse_clrstack(stack_text)
    assert stack.os_thread_id == meta["thread_id"]
    assert any(f.method and f.method.startswith("ThrowingApp.Program.") for f in stack.frames)


def test_split_without_a_stack_or_a_pe():
    out, err, _ = _load(_runs("dotnet-dump-verify-")[0])
    text = out + err
    head = text[: text.index("OS Thread Id:")]
    pe_text, threads_text, stack_text = ro.split_dotnet_dump(head)
    assert stack_text == "" and "ThreadCount:" in threads_text and parse_pe(pe_text) is not None
    only_threads = text[text.index("ThreadCount:") : text.index("OS Thread Id:")]
    assert ro.split_dotnet_dump(only_threads)[1] == only_threads
    assert ro.split_dotnet_dump("") == ("", "", "")


# ----- dotnet-dump: analyze's overview and exceptions ----------------------------------------------


@pytest.mark.parametrize("name", _runs("dotnet-dump-overview-"))
def test_overview_run_cuts_into_threads_and_all_stacks(name: str) -> None:
    out, err, meta = _load(name)
    assert meta["commands"] == ["clrthreads", "clrstack -all", "exit"]
    cut = ro.dotnet_dump_overview(out + (("\n" + err) if err.strip() else ""))
    assert cut is not None
    table = parse_threads(cut[0])
    stacks = parse_clrstack_all(cut[1])
    assert {s.os_thread_id for s in stacks} == {t.os_id for t in table.threads if t.dbg_id is not None}
    assert meta["thread_id"] in {s.os_thread_id for s in stacks}


def test_overview_of_text_with_no_thread_list_is_none():
    out, _, _ = _load(_runs("dotnet-dump-overview-")[0])
    assert ro.dotnet_dump_overview(out[: out.index("ThreadCount:")]) is None


@pytest.mark.parametrize("name", _runs("dotnet-dump-exceptions-"))
def test_exceptions_run_cuts_at_each_threads_listing(name: str) -> None:
    out, err, meta = _load(name)
    blocks = ro.dotnet_dump_threads_blocks(out + (("\n" + err) if err.strip() else ""))
    assert len(blocks) == meta["commands"].count("threads") == len(meta["listed"]) + 1
    current, reply = blocks[0]
    assert current == meta["listed"][0]  # setthread took: the listing marks the thread with *
    exc = parse_pe(reply)
    assert exc is not None and exc.type == meta["exception_type"]
    _, by_address = blocks[-1]  # pe -nested <the event's address>
    exc = parse_pe(by_address)
    assert exc is not None and exc.address == meta["exception_address"]
    assert exc.type == meta["exception_type"]


def test_threads_blocks_without_a_current_thread():
    out, _, _ = _load(_runs("dotnet-dump-exceptions-")[0])
    unmarked = out.replace("\n*", "\n ")
    assert [current for current, _ in ro.dotnet_dump_threads_blocks(unmarked)] == [None, None]
    assert ro.dotnet_dump_threads_blocks("no listing here\n") == []


def test_warnings():
    text = "WARNING: the dump has no memory\n  WARNING: indented\nwarning: lldb's\nother\n"
    assert ro.dotnet_dump_warnings(text) == ["the dump has no memory"]
    assert ro.warning_lines(text) == ("WARNING: the dump has no memory", "WARNING: indented")
    assert ro.warning_lines(text, ("warning:", "WARNING:"), indented=False) == (
        "WARNING: the dump has no memory",
        "warning: lldb's",
    )
    for name in RUNS:
        if name.startswith("dotnet-dump-"):
            out, err, _ = _load(name)
            found = ro.dotnet_dump_warnings(out + err)
            # recorded: pydbgauto's .NET 10 cores carry what dotnet-dump needs; of .NET 8 it warns
            if "-net10-" in name:
                assert found == []
            else:
                assert len(found) == 1 and found[0].startswith("This dump doesn't contain memory")


# ----- lldb --batch --core -------------------------------------------------------------------------


@pytest.mark.parametrize("name", _runs("lldb-overview-"))
def test_lldb_overview_run_cuts_at_the_echoes(name: str) -> None:
    out, err, meta = _load(name)
    assert meta["commands"][1:] == ["clrthreads", "clrstack -all"]
    assert ro.lldb_loaded_sos(out + "\n" + err)
    threads_text, stacks_text = ro.lldb_replies(out, 2)
    table = parse_threads(threads_text)
    stacks = parse_clrstack_all(stacks_text)
    assert meta["thread_id"] in [t.os_id for t in table.threads]
    assert meta["thread_id"] in [s.os_thread_id for s in stacks]


@pytest.mark.parametrize("name", _runs("lldb-exceptions-"))
def test_lldb_exceptions_run_cuts_at_the_echoes(name: str) -> None:
    out, _, meta = _load(name)
    ours = meta["commands"][1:]  # after the plugin load
    replies = ro.lldb_replies(out, len(ours))
    assert len(replies) == len(ours)
    for command, reply in zip(ours, replies):
        if command.startswith("pe -nested"):
            exc = parse_pe(reply)
            assert exc is not None and exc.type == meta["exception_type"]
            assert exc.address == meta["exception_address"]
        else:
            assert command.startswith("thread select") and "Exception object:" not in reply


def test_lldb_replies_pad_the_commands_lldb_did_not_get_to():
    out, _, _ = _load(_runs("lldb-overview-")[0])
    first_two = out[: out.index("(lldb) clrthreads")]
    assert ro.lldb_replies(first_two, 2) == ["", ""]


def test_lldb_that_could_not_load_the_core_or_sos():
    assert not ro.lldb_loaded_sos("error: Unable to load plugin\nCore file 'x' (x86_64) was loaded.\n")
    assert not ro.lldb_loaded_sos("error: invalid core file\n")


# ----- cdb -z: written from documentation (the cdb replay transcripts, labelled so) -------------------


def _documented_reply(transcript: str, command: str) -> str:
    text = (CDB_DOCUMENTED / transcript).read_text()
    section = text.split(f"=== command: {command}\n", 1)[1]
    return section.split("\n===", 1)[0]


def test_cdb_thread_listing():
    assert ro.cdb_lists_threads(_documented_reply("overlay-dump-break.txt", "~"))
    assert not ro.cdb_lists_threads("Unable to get thread data\n")


def test_cdb_sos_load_failure():
    assert ro.SOS_LOAD_FAILURES.search(_documented_reply("overlay-sos-fails.txt", ".loadby sos coreclr"))
    assert not ro.SOS_LOAD_FAILURES.search("")
