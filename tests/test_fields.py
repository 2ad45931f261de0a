"""The exception's own fields (issue 13, item 3): the field() predicate, uses_fields, decoding, the
AggregateException's inner exceptions, and the models. No debugger: real parsing of real SOS output is
in tests/integration/test_fields.py."""

from __future__ import annotations

from typing import Dict, List

import pytest

import pydbgauto as pda
from pydbgauto import fields as fields_mod
from pydbgauto.errors import ConfigurationError
from pydbgauto.models import ManagedException, ObjectField, StopEvent
from pydbgauto.predicates import ALL_NEEDS, NEEDS, Facts, evaluate, from_spec
from pydbgauto.sos.objects import FieldRow, parse_dumparray, parse_dumpobj_string

FIELDS = (
    ObjectField(name="_message", type="System.String", value="Order 42 was rejected", address=0x10),
    ObjectField(name="_innerException", type="System.Exception", value=None),
    ObjectField(name="_HResult", type="System.Int32", value=-2147024809, value_type=True),
    ObjectField(name="_flag", type="System.Boolean", value=True, value_type=True),
    ObjectField(name="_paramName", type="System.String", value="order", address=0x20),
)


def _event(fields=FIELDS) -> StopEvent:  # type: ignore[no-untyped-def]
    exc = ManagedException(
        address=0x1000, type="ThrowingApp.OrderRejectedException", message="m", fields=fields
    )
    return StopEvent(kind="first-chance", exception=exc, exception_address=0x1000)


def test_field_matches_by_name_and_value_of_the_same_kind() -> None:
    assert pda.field("_paramName", "order").matches(_event())
    assert not pda.field("_paramName", "other").matches(_event())
    assert pda.field("_HResult", -2147024809).matches(_event())
    assert pda.field("_innerException", None).matches(_event())
    assert pda.field("_flag", True).matches(_event())
    assert not pda.field("_flag", 1).matches(_event())  # True is not 1 here
    assert not pda.field("_nope", None).matches(_event())
    assert not pda.field("_paramName", "order").matches(_event(fields=None))  # not read: false, not an error


def test_field_needs_fields_and_round_trips_as_a_spec() -> None:
    p = pda.exception_type("X") & pda.field("_paramName", "order")
    assert p.needs == {"fields"} and "fields" in ALL_NEEDS and "fields" not in NEEDS
    spec = p.to_spec()
    assert spec is not None and {"op": "field", "name": "_paramName", "value": "order"} in spec["predicates"]
    assert from_spec(spec) == p
    assert p.describe() == "exception_type('X') & field('_paramName', 'order')"


@pytest.mark.parametrize(
    "name, value", [("", 1), (" x", 1), ("a b", 1), (3, 1), ("_x", [1]), ("_x", object())]
)
def test_field_refuses_bad_input(name, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError):
        pda.field(name, value)
    with pytest.raises(ConfigurationError):
        from_spec({"op": "field", "name": name, "value": value})


def test_a_callable_gets_fields_only_when_it_says_so() -> None:
    plain = pda.as_predicate(lambda exc: exc.field("_paramName") == "order")
    assert "fields" not in plain.needs  # a plain callable keeps the cost it had

    @pda.uses_fields
    def rejected_order(exc: ManagedException) -> bool:
        return exc.field("_paramName") == "order"

    marked = pda.as_predicate(rejected_order)
    assert marked.needs == NEEDS | {"fields"}
    assert evaluate(marked, _event()).matched
    assert not evaluate(marked, _event(fields=None)).matched
    with pytest.raises(ConfigurationError):
        pda.uses_fields("not callable")  # type: ignore[arg-type]


def test_inner_field_looks_at_the_inner_exceptions() -> None:
    inner = ManagedException(address=0x2000, type="System.FormatException", message="Bad", fields=FIELDS)
    outer = StopEvent(
        kind="first-chance", exception=ManagedException(address=1, type="A", message=None, fields=())
    )
    facts = Facts(outer, inner_exceptions=(inner,))
    assert pda.inner(pda.field("_paramName", "order")).matches(facts)
    assert not pda.field("_paramName", "order").matches(facts)


def test_decode_primitives_as_sos_prints_them() -> None:
    def row(type_: str, value: str) -> FieldRow:
        return FieldRow(
            method_table=1, type=type_, value_type=True, attribute="instance", value=value, name="f"
        )

    assert fields_mod.decode(row("System.Int32", "-532462766")) == -532462766
    assert fields_mod.decode(row("System.Char", "4f")) == "O"
    assert fields_mod.decode(row("System.Boolean", "0")) is False
    assert fields_mod.decode(row("System.IntPtr", "0000000000000010")) == 16
    assert fields_mod.decode(row("System.Double", "1.5")) == 1.5
    assert (
        fields_mod.decode(row("MyApp.Money", "00007f0000001000")) == "00007f0000001000"
    )  # a struct: as printed


def test_fields_stay_out_of_records_until_read() -> None:
    exc = ManagedException(address=1, type="T", message=None)
    assert "fields" not in exc.to_dict()  # records and goldens of exceptions without fields are unchanged
    with_fields = ManagedException(address=1, type="T", message=None, fields=FIELDS)
    data = with_fields.to_dict()
    assert data["fields"][4] == {
        "name": "_paramName",
        "type": "System.String",
        "value": "order",
        "address": 0x20,
        "object_type": None,
        "value_type": False,
    }
    assert ManagedException.from_dict(data) == with_fields
    assert with_fields.field("_paramName") == "order" and with_fields.field("_none", 7) == 7


def test_string_and_array_parsers() -> None:
    # Written in the form lldb + SOS printed on this machine (see tests/integration/test_fields.py, which
    # parses the real output); not a recorded transcript.
    text = "Name:        System.String\nString:      line one\nline two\nFields:\n   MT  Field ...\n"
    assert parse_dumpobj_string(text) == "line one\nline two"
    assert parse_dumpobj_string("Name:        System.Object\nFields:\nNone\n") is None
    array = "Name:        System.Exception[]\nArray:       Rank 1, Number of elements 3, Type CLASS\n"
    array += "[0] 00007fb2818098f8\n[1] null\n[2] 00007fb281809900\n"
    assert parse_dumparray(array) == (0x7FB2818098F8, None, 0x7FB281809900)


def _row(type_: str, value: str, name: str) -> str:
    return f"00007f0000000002  4000001       20 {type_:>20}   No instance {value} {name}"


def _dumpobj(name: str, *rows: str) -> str:
    head = f"Name:        {name}\nMethodTable: 00007f0000000001\nFields:\n"
    if not rows:
        return head + "None\n"
    table = "              MT    Field   Offset                 Type VT     Attr            Value Name\n"
    return head + table + "".join(r + "\n" for r in rows)


class _FakeSession:
    """TEST DOUBLE: answers dumpobj / dumparray / pe for one AggregateException from text written in the
    forms SOS prints (not recorded: the sample app throws no AggregateException)."""

    def __init__(self) -> None:
        collection = (
            "System.Collections.ObjectModel.ReadOnlyCollection`1[[System.Exception, System.Private.CoreLib]]"
        )
        self.replies: Dict[str, str] = {
            "dumpobj 0xa000": _dumpobj(
                "System.AggregateException",
                _row("System.Exception", "000000000000b000", "_innerException"),
                _row("...Exception, System.Private.CoreLib]]", "000000000000c000", "_innerExceptions"),
            ),
            "dumpobj 0xb000": _dumpobj("System.FormatException"),
            "dumpobj 0xc000": _dumpobj(
                collection, _row("...Exception, System.Private.CoreLib]]", "000000000000d000", "list")
            ),
            "dumpobj 0xd000": _dumpobj("System.Exception[]"),
            "dumparray 0xd000": "Name:        System.Exception[]\n"
            "Array:       Rank 1, Number of elements 2, Type CLASS\n"
            "[0] 000000000000b000\n[1] 000000000000e000\n",
        }
        self.sent: List[str] = []

    def sos(self, command: str) -> str:
        self.sent.append(command)
        return self.replies[command]

    def exception(self, address: int) -> ManagedException:
        self.sent.append(f"pe 0x{address:x}")
        kind = {0xB000: "System.FormatException", 0xE000: "System.TimeoutException"}[address]
        return ManagedException(address=address, type=kind, message=None)


def test_an_aggregate_exception_gives_all_its_inner_exceptions() -> None:
    session = _FakeSession()
    aggregate = ManagedException(
        address=0xA000, type="System.AggregateException", message="One or more errors"
    )
    found = fields_mod.aggregate_inner_exceptions(session, aggregate)
    assert found is not None and [e.type for e in found] == [
        "System.FormatException",
        "System.TimeoutException",
    ]
    assert session.sent[-2:] == ["pe 0xb000", "pe 0xe000"]
    other = ManagedException(address=0xB000, type="System.FormatException", message=None)
    assert fields_mod.aggregate_inner_exceptions(session, other) is None  # the usual chain applies
