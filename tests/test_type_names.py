"""pydbgauto/type_names.py: which printed type names a user's name names."""

from __future__ import annotations

import pytest

from pydbgauto import predicates as pda
from pydbgauto.drivers.lldb.filter_stub import type_verdict
from pydbgauto.type_names import names_any, names_type

INT_RESULT = "MyApp.Result`1[[System.Int32, System.Private.CoreLib]]"
PAIR = "MyApp.Pair`2[[System.String, System.Private.CoreLib],[MyApp.Item, MyApp]]"


@pytest.mark.parametrize(
    "wanted, printed, expected",
    [
        ("System.IO.IOException", "System.IO.IOException", True),
        ("System.IO.IOException", "System.IO.IOExceptionX", False),
        ("MyApp.Result`1", INT_RESULT, True),  # the generic type's own name: every instantiation
        ("MyApp.Result`1", "MyApp.Result`1", True),
        ("MyApp.Result`2", INT_RESULT, False),  # another arity is another type
        ("MyApp.Result", INT_RESULT, False),  # no arity: a non-generic type of that name
        ("MyApp.Result`1", "MyApp.Result`12[[...]]", False),
        ("MyApp.Pair`2", PAIR, True),
        (INT_RESULT, INT_RESULT, True),  # one instantiation, as SOS prints it
        ("MyApp.Result`1[[System.String, System.Private.CoreLib]]", INT_RESULT, False),
        ("MyApp.Outer.Inner", "MyApp.Outer+Inner", False),  # .NET spells a nested type Outer+Inner
    ],
)
def test_names_type(wanted: str, printed: str, expected: bool) -> None:
    assert names_type(wanted, printed) is expected


def test_names_any_looks_at_each_base_type() -> None:
    chain = ("MyApp.IntResult", INT_RESULT, "System.Exception", "System.Object")
    assert names_any("MyApp.Result`1", chain)
    assert not names_any("MyApp.Result`2", chain)


def test_the_predicate_and_the_agents_type_verdict_agree() -> None:
    chain = ("MyApp.IntResult", INT_RESULT, "System.Exception", "System.Object")
    for derived in (False, True):
        predicate = pda.exception_type("MyApp.Result`1", derived=derived)
        assert type_verdict(predicate.to_spec(), chain) is derived
        assert type_verdict(predicate.to_spec(), chain[1:]) is True
