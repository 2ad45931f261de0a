"""The in-target message/HResult prefilter (pydbgauto/drivers/lldb/message_prefilter.py, filter_stub.py;
docs/linux-fast-filter.md) on the real lldb + SOS and FilterApp: on .NET 8 a throw whose message lacks the
predicate's literal (or whose HResult differs) never stops the target, each matching throw is still one
event, a prefilter that most throws pass anyway is given up without deciding a throw twice, and a thread
stopped inside the prefilter gets its registers back when the stub is removed. On .NET 10 it stays off
(its funnel runs in preemptive mode: the stub must not read a message there). Stops are counted, not timed.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import tempfile
from typing import Any, Dict

import pytest

import pydbgauto as pda
from pydbgauto import Session, elfcore
from pydbgauto.drivers.lldb import filter_stub

from .conftest import tracer_of
from .test_fast_filter import app, filterapp, filterapp_builds  # noqa: F401 - fixtures
from .test_fast_filter import command, first_event, run_to_exit, stats

pytestmark = pytest.mark.lldb

IOE = "System.InvalidOperationException"
INDEX = "System.IndexOutOfRangeException"
COR_E_INDEXOUTOFRANGE = 0x80131508


def prefilter_of(s: Session) -> Dict[str, Any]:
    return stats(s)["inline_filter"]["prefilter"]  # type: ignore[no-any-return]


def test_a_message_without_the_literal_never_stops(waiting_app, runtime, no_lldb_left):
    with first_event(waiting_app, pda.message_matches("^match$"), "storm 2000", "other", "match") as (
        s,
        event,
    ):
        assert event.exception is not None and event.exception.message == "match"
        counts = stats(s)
        inline = counts["inline_filter"]
        assert inline["seen"] == 2002
        if runtime != "net8":  # off: every first frame traps, decided in the agent
            assert inline["prefilter"] == {"clauses": 0}
            assert counts["filter_traps"] == 2002, counts
            return
        # The first throws stop until the field reader agrees with pe (exception_fields.CHECKS); then
        # only the match does.
        assert inline["prefilter"]["literals"] == ["match"]
        assert inline["prefilter"]["passed"] == 2000 + 1 - 3, inline
        assert counts["filter_traps"] == 3 + 1, counts
        assert len(s.take_filtered()) == 3  # the decision log lists what stopped
        waiting_app.send("storm 100")
        waiting_app.send("match")
        assert s.wait_for_event(120).exception.message == "match"  # type: ignore[union-attr]
        assert stats(s)["filter_traps"] == 5
    assert tracer_of(waiting_app.pid) == 0
    assert waiting_app.wait_for_line("OK match", 60)


@pytest.mark.parametrize(
    "predicate",
    [pda.message_matches("bounds of the array"), pda.hresult(COR_E_INDEXOUTOFRANGE)],
    ids=["message", "hresult"],
)
def test_exactly_one_event_per_matching_throw(filterapp, runtime, predicate, no_lldb_left):  # noqa: F811
    """FilterApp's mixed 6: a FormatException, an InvalidOperationException, an IndexOutOfRangeException
    from a bounds check (the runtime's message and HResult) and a MatchedException, six times."""
    events, counts = run_to_exit([filterapp, "mixed", "6"], predicate)
    assert [e.exception.type for e, _ in events] == [INDEX] * 6, counts
    for event, bare in events:
        assert bare == event.exception_address  # a bare pe shows the exception at the stop
    if runtime == "net8":
        prefilter = counts["inline_filter"]["prefilter"]
        assert prefilter["clauses"] == 1
        # the 3 checks, then the 6 matches stop (1 may be among the checks); 24 - 3 - 5.. let through
        assert counts["filter_traps"] <= 3 + 6 and prefilter["passed"] >= 24 - 3 - 6, counts


@pytest.mark.parametrize("question", ["off", "on"])
def test_throws_the_prefilter_lets_by_are_each_decided_once(
    waiting_app, runtime, question, no_lldb_left, monkeypatch
):
    """.NET 8: the storm's throws all hold the prefilter's literal "sto" (the regex never matches them).
    With the question off each would stop twice (the trap, then __cxa_rethrow): the prefilter is given up
    and each stops once. With it on (asking.py) the stub asks the agent's answering thread, which rules
    each out with no stop. Either way the decision log lists every throw and the match is one event."""
    if runtime != "net8":
        pytest.skip(".NET 8's prefilter and question")
    if question == "off":
        monkeypatch.setenv("PYDBGAUTO_NO_QUESTION", "1")
    predicate = pda.message_matches("^sto(?!rm)") | pda.message_matches("^match$")
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        s.set_filter(predicate)
        waiting_app.send("storm 300")
        waiting_app.send("match")
        event = s.wait_for_event(120)
        assert event.exception is not None and event.exception.message == "match"
        counts = stats(s)
        inline = counts["inline_filter"]
        checks = 0
        if question == "off":
            assert "given up" in inline["prefilter"], inline
            assert "off" in inline
        else:
            asked = inline["question"]
            checks = 300 - asked["answers"]["answered_no"]  # the stops until the field reader is trusted
            assert checks <= 4 and asked["asked"] == 300 - checks + 1, inline
            assert counts["filter_traps"] == checks + 1 and counts["asked_passed"] == 300 - checks, counts
        filtered = s.take_filtered()
        assert len(filtered) == 300 and len({f.exception_address for f in filtered}) == 300
        waiting_app.send("storm 50")
        waiting_app.send("match")
        assert s.wait_for_event(120).exception.message == "match"  # type: ignore[union-attr]
        assert len(s.take_filtered()) == 50
        if question == "on":
            assert stats(s)["filter_traps"] == checks + 2
    assert tracer_of(waiting_app.pid) == 0


def in_lldb(s: Session, code: str, **values: Any) -> Any:
    """Run ``code`` in the session's lldb (its Python, beside the agent) with ``values`` and ``process``
    defined; it sets ``result``, which comes back through a file (lldb's ``script`` prints nowhere here)."""
    fd, out = tempfile.mkstemp()
    os.close(fd)
    body = "\n".join("    " + line for line in code.strip().splitlines())
    program = (
        "import json, struct, traceback, lldb\n"
        f"values = json.loads({json.dumps(json.dumps(values))})\n"
        "process = lldb.debugger.GetSelectedTarget().GetProcess()\n"
        f"try:\n{body}\nexcept Exception:\n    result = {{'error': traceback.format_exc()}}\n"
        f"with open({out!r}, 'w') as f:\n    json.dump(result, f)\n"
    )
    encoded = base64.b64encode(program.encode()).decode()
    s.driver.execute(f"script exec(__import__('base64').b64decode('{encoded}').decode())")
    try:
        with open(out) as f:
            result = json.load(f)
    finally:
        os.unlink(out)
    assert not (isinstance(result, dict) and "error" in result), result
    return result


# A thread of the stopped target made to look as if it had stopped inside the prefilter: the stub's saves
# done (its registers in the red zone), the registers clobbered, the pc in the prefilter.
PUT_IN_THE_PREFILTER = """
thread = process.GetSelectedThread()
frame = thread.GetFrameAtIndex(0)
names = [name for name, _ in values["saved"]] + ["rip", "rsp"]
before = {name: frame.FindRegister(name).GetValueAsUnsigned() for name in names}
error = lldb.SBError()
below = process.ReadMemory(before["rsp"] - 64, 64, error)
for name, slot in values["saved"]:
    process.WriteMemory(before["rsp"] - slot, struct.pack("<Q", before[name]), error)
for i, (name, _) in enumerate(values["saved"]):
    frame.FindRegister(name).SetValueFromCString(str(0xDEAD0000 + i))
frame.SetPC(values["pc"])
result = {"tid": thread.GetThreadID(), "before": before, "below": below.hex()}
"""
PUT_BACK = """
thread = process.GetThreadByID(values["tid"])
frame = thread.GetFrameAtIndex(0)
now = {name: frame.FindRegister(name).GetValueAsUnsigned() for name, _ in values["saved"]}
now["rip"] = frame.GetPC()
error = lldb.SBError()
process.WriteMemory(values["rsp"] - 64, bytes.fromhex(values["below"]), error)
frame.SetPC(values["rip"])
result = now
"""


def core_registers(path: str) -> Dict[int, Dict[str, int]]:
    """tid -> registers of each NT_PRSTATUS in an ELF core (x86-64 layout, as elfcore.py writes it)."""
    with open(path, "rb") as f:
        data = f.read()
    phoff, (phentsize, phnum) = struct.unpack_from("<Q", data, 0x20)[0], struct.unpack_from("<HH", data, 0x36)
    found: Dict[int, Dict[str, int]] = {}
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        at, end = p_offset, p_offset + p_filesz
        while p_type == 4 and at < end:  # PT_NOTE
            namesz, descsz, kind = struct.unpack_from("<III", data, at)
            desc = at + 12 + (namesz + 3) // 4 * 4
            if kind == 1:  # NT_PRSTATUS: pid at 32, the registers after 112 bytes
                tid = struct.unpack_from("<i", data, desc + 32)[0]
                values = struct.unpack_from("<27Q", data, desc + 112)
                found[tid] = dict(zip(elfcore.GP_REGISTERS, values))
            at = desc + (descsz + 3) // 4 * 4
    return found


def test_a_thread_stopped_in_the_prefilter_gets_its_registers_back(
    waiting_app, runtime, tmp_path, no_lldb_left
):
    if runtime != "net8":
        pytest.skip(".NET 8's prefilter")
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        s.set_filter(pda.message_matches("^match$"))
        waiting_app.send("storm 10")
        waiting_app.send("match")
        assert s.wait_for_event(120).exception.message == "match"  # type: ignore[union-attr]
        inline = stats(s)["inline_filter"]
        assert inline["prefilter"]["clauses"] == 1
        start, end = filter_stub.build(0, [b"\x90"] * 14, 0, False, False, 0).borrowed[0]
        pc = int(inline["stub"], 16) + (start + end) // 2
        saved = [list(pair) for pair in filter_stub.SAVED]
        put = in_lldb(s, PUT_IN_THE_PREFILTER, saved=saved, pc=pc)
        # A dump now shows that thread where it is in the unpatched code (the core has the original
        # bytes), its arguments back
        core = str(tmp_path / "in-the-prefilter.core")
        s.dump(core, verify=False)
        shown = core_registers(core)[put["tid"]]
        assert shown["rip"] == int(inline["entry"], 16)
        assert {k: shown[k] for k, _ in saved} == {k: put["before"][k] for k, _ in saved}
        s.stop_breaking_on_clr_exceptions()  # removes the stub under the thread
        note = stats(s)["inline_filter"]["off"]
        assert f"'{put['tid']}': '{pc:#x}->{inline['entry']}'" in note, note
        now = in_lldb(
            s,
            PUT_BACK,
            saved=saved,
            tid=put["tid"],
            rsp=put["before"]["rsp"],
            below=put["below"],
            rip=put["before"]["rip"],
        )
        assert now["rip"] == int(inline["entry"], 16)  # the function starts again ...
        assert {k: now[k] for k, _ in saved} == {k: put["before"][k] for k, _ in saved}  # with its arguments
    assert waiting_app.wait_for_line("OK match", 60)
    command(waiting_app, "match")  # the thread put back as it was goes on
    assert tracer_of(waiting_app.pid) == 0
