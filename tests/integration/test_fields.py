"""The exception's own fields on the real lldb + SOS and the sample app (issue 13, item 3)."""

from __future__ import annotations

import json

import pytest

import pydbgauto as pda
from pydbgauto import fields as fields_mod
from pydbgauto.session import Session
from pydbgauto.watching import watch
from tests.integration.conftest import APPS

pytestmark = pytest.mark.lldb


def test_field_predicate_catches_the_order_rejection_by_its_param_name(app, tmp_path, no_lldb_left):
    result = watch(
        launch=[app, "first-chance"],
        when=pda.field("_paramName", "order"),
        dump_dir=str(tmp_path),
        max_dumps=None,
        verify=False,
        timeout=120,
    )
    assert [c.exception.type for c in result.captures] == ["ThrowingApp.OrderRejectedException"]
    assert not result.filtered_in_debugger  # the agent cannot read fields: Python decides
    exc = result.captures[0].exception
    assert exc.field("_paramName") == "order"
    assert exc.field("_message") == "Order 42 was rejected: card declined"
    assert exc.field("_HResult") == -2147024809  # 0x80070057, ArgumentException's
    assert exc.field("_innerException", "missing") is None  # a null reference
    assert all(f.name != "Empty" for f in exc.fields)  # static fields are not the object's own
    with open(result.captures[0].record_path) as f:
        saved = json.load(f)
    assert {"name": "_paramName", "value": "order"}.items() <= next(
        x for x in saved["exception"]["fields"] if x["name"] == "_paramName"
    ).items()


def test_inner_field_and_a_marked_callable(tmp_path, no_lldb_left):
    @pda.uses_fields
    def bad_amount(exc):  # type: ignore[no-untyped-def]
        return (exc.field("_message") or "").startswith("Bad amount")

    result = watch(
        launch=[APPS["net10"], "first-chance"],
        when=pda.inner(pda.field("_message", "Bad amount '12,5x'")) | pda.as_predicate(bad_amount),
        dump_dir=str(tmp_path),
        max_dumps=None,
        verify=False,
        timeout=120,
    )
    # the FormatException itself (callable), then the ApplicationException that wraps it (inner field)
    assert [c.exception.type for c in result.captures] == [
        "System.FormatException",
        "System.ApplicationException",
    ]
    assert result.captures[1].inner_exceptions[0].field("_message") == "Bad amount '12,5x'"


def test_fields_are_not_read_when_no_predicate_needs_them(tmp_path, no_lldb_left):
    result = watch(
        launch=[APPS["net10"], "custom"],
        when=pda.exception_type("ThrowingApp.OrderRejectedException"),
        dump_dir=str(tmp_path),
        verify=False,
        timeout=120,
    )
    assert result.captures and result.captures[0].exception.fields is None
    with open(result.captures[0].record_path) as f:
        assert "fields" not in json.load(f)["exception"]


def test_read_fields_in_a_session_decodes_strings_and_primitives(waiting_app, no_lldb_left):
    with Session.attach(pid=waiting_app.pid) as s:
        s.break_on_clr_exceptions()
        waiting_app.send("custom")
        event = s.wait_for_event(60)
        exc = fields_mod.read_fields(s, event.exception)
        # the same object read twice gives the same fields; no AggregateException here
        assert fields_mod.read_fields(s, exc) is exc
        assert fields_mod.aggregate_inner_exceptions(s, exc) is None
    names = [f.name for f in exc.fields]
    assert names[:2] == ["_exceptionMethod", "_message"] and names[-1] == "_paramName"
    message = next(f for f in exc.fields if f.name == "_message")
    assert message.object_type == "System.String" and message.address and message.value.startswith("Order 42")
    xcode = next(f for f in exc.fields if f.name == "_xcode")
    assert xcode.value_type and isinstance(xcode.value, int)
