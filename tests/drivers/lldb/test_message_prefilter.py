"""A predicate's necessary condition on the message and HResult (pydbgauto/drivers/lldb/message_prefilter.py),
pure: never stronger than the predicate (a property test against ``re.search``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pydbgauto as pda
from pydbgauto.drivers.lldb import filter_stub
from pydbgauto.drivers.lldb.message_prefilter import Clause, condition, required_literal, table


@pytest.mark.parametrize(
    "regex, flags, literal",
    [
        ("timeout", "", "timeout"),
        ("^Connection (refused|reset) by peer$", "", "Connection re"),  # the parser factors "re" out
        (r"order \d+ failed", "", " failed"),
        ("a+b", "", "b"),  # a repeat is no literal
        ("x(?:yz)w", "", "xyzw"),  # a group is part of the sequence
        ("timeout|refused", "", None),  # an alternation at the top: no one literal
        (r"\d+", "", None),
        ("Timeout", "i", None),  # every character has a case
        ("(?i)code 42", "", " 42"),  # inline flags count; digits and spaces have no case
        ("a b  # a comment", "x", "ab"),  # verbose: spaces and comments are not in the text
        ("[", "", None),  # not a regex: no condition (predicates.py refuses it anyway)
    ],
)
def test_the_literal_every_match_contains(regex, flags, literal):
    assert required_literal(regex, flags) == literal


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(), regex=st.sampled_from(["ab+c", "x(yz|yw)q", "^id=\\d+;", "(?i)err 5\\d", "k.v", "p?q"])
)
def test_every_match_contains_the_literal(data, regex):
    message = data.draw(st.from_regex(regex))
    assume(re.search(regex, message))
    literal = required_literal(regex, "")
    assert literal is None or literal in message


def spec(predicate):  # type: ignore[no-untyped-def]
    return predicate.to_spec()


def test_conditions_of_combined_predicates():
    msg = pda.message_matches("database timeout")
    code = pda.hresult(0x80131509)
    ioe = pda.exception_type("System.InvalidOperationException")
    assert condition(spec(msg)) == (Clause(literal="database timeout"),)
    assert condition(spec(code)) == (Clause(hresult=0x80131509),)
    assert condition(spec(ioe & msg)) == (Clause(literal="database timeout"),)  # the type: the cache's
    assert condition(spec(msg & code)) == (Clause(literal="database timeout", hresult=0x80131509),)
    assert condition(spec(msg | code)) == (Clause(literal="database timeout"), Clause(hresult=0x80131509))
    assert condition(spec(msg | ioe)) is None  # the type alone may match
    assert condition(spec(~msg)) is None
    assert condition(spec(ioe)) is None
    assert condition(spec(pda.message_matches("a|b"))) is None
    assert condition(spec(pda.inner(msg))) is None  # the inner exception's message, not this one's
    assert condition(spec(pda.thrown_in("Foo") & msg)) == (Clause(literal="database timeout"),)


def test_the_table_as_the_stub_reads_it():
    made = table([Clause(literal="ab", hresult=5), Clause(hresult=7)])
    records = [made[i : i + 16] for i in range(0, 48, 16)]
    text_at = filter_stub.PF_TABLE + 48
    assert records[0] == (3).to_bytes(4, "little") + (5).to_bytes(4, "little") + text_at.to_bytes(
        4, "little"
    ) + (2).to_bytes(4, "little")
    assert records[1][:8] == (1).to_bytes(4, "little") + (7).to_bytes(4, "little")
    assert records[2] == bytes(16)  # the end
    assert made[48:] == "ab".encode("utf-16-le")
    with pytest.raises(ValueError):
        table([])
    with pytest.raises(ValueError):
        table([Clause(literal="x" * 64)] * 15)  # 15 records fit, their text does not
