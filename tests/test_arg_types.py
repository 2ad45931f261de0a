"""The subcommands' option value types (pydbgauto/arg_types.py)."""

from __future__ import annotations

import argparse

import pytest

from pydbgauto.arg_types import positive_int, positive_seconds, process_id


def test_good_values() -> None:
    assert (positive_int("20"), process_id("1234"), positive_seconds("1.5"), positive_seconds("3")) == (
        20,
        1234,
        1.5,
        3.0,
    )


@pytest.mark.parametrize(
    "convert, text, says",
    [
        (positive_int, "0", "'0' is not a positive integer"),
        (positive_int, "-3", "is not a positive integer"),
        (positive_int, "2.5", "is not a positive integer"),
        (process_id, "x", "'x' is not a process id"),
        (positive_seconds, "soon", "is not a number of seconds"),
        (positive_seconds, "0", "give a positive number of seconds"),
        (positive_seconds, "inf", "give a positive number of seconds"),
        (positive_seconds, "nan", "give a positive number of seconds"),
    ],
)
def test_bad_values_say_what_was_expected(convert, text, says) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        convert(text)
