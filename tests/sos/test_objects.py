"""dumpobj / dumpmt / ip2md / bpmd headers, on real lldb + SOS output (from the recorded watch sessions)."""

import json
import os

import pytest

from pydbgauto.errors import ParseError
from pydbgauto.sos.objects import parse_bpmd, parse_dumpmt, parse_dumpobj, parse_ip2md

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def recorded(prefix: str) -> list:
    with open(os.path.join(ROOT, "tests", "transcripts", "sessions", "first-chance-net10.json")) as f:
        stops = json.load(f)["stops"]
    return [
        (k.split("|", 1)[1], v)
        for s in stops
        for k, v in s["commands"].items()
        if k.split("|", 1)[1].startswith(prefix)
    ]


def test_dumpobj_header_of_a_real_exception_object():
    command, text = recorded("dumpobj ")[0]
    header = parse_dumpobj(text)
    assert header.name == "System.InvalidOperationException"
    assert header.method_table > 0x10000
    # the field table below the header repeats no header word into the result
    assert "Fields:" in text


def test_dumpmt_chain_of_a_real_exception_reaches_object():
    names = {}
    for command, text in recorded("dumpmt "):
        mt = parse_dumpmt(text)
        names[int(command.split()[1], 16)] = mt
    by_name = {mt.name: mt for mt in names.values()}
    assert by_name["System.Object"].parent is None
    current = by_name["ThrowingApp.OrderRejectedException"]
    chain = [current.name]
    while current.parent is not None:
        current = names[current.parent]
        chain.append(current.name)
    assert chain == [
        "ThrowingApp.OrderRejectedException",
        "System.ArgumentException",
        "System.SystemException",
        "System.Exception",
        "System.Object",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "MethodDesc = 00007FFF79291B18\nAdding pending breakpoints...\n",
            0x7FFF79291B18,
        ),  # method known, no code
        ("Adding pending breakpoints...\n", None),  # the method is not loaded yet
        ("MethodDesc = 00007fff`79291b18\nSetting breakpoint: bp 00007FFF784F89D0\n", 0x7FFF79291B18),
    ],
)
def test_bpmd_reply(text, expected):
    assert parse_bpmd(text) == expected


def test_ip2md():
    assert parse_ip2md(
        "MethodDesc:   00007fff79281b58\nMethod Name:  System.Runtime.EH.DispatchEx(...)\n"
    ) == (0x7FFF79281B58)
    assert parse_ip2md("Failed to request MethodData, not in JIT code range\n") is None


@pytest.mark.parametrize("text", ["", "garbage", "MethodTable: 1234\n", "Invalid object\n"])
def test_not_a_header_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_dumpobj(text)
    with pytest.raises(ParseError):
        parse_dumpmt(text)
