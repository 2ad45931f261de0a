"""Value types for the subcommands' ``argparse`` options (``type=``): a bad value is refused with a
message that says what was expected."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """``--top 20``: a positive whole number."""
    return _positive_int(text, "a positive integer")


def process_id(text: str) -> int:
    """``--pid 1234``."""
    return _positive_int(text, "a process id (a positive integer)")


def positive_seconds(text: str) -> float:
    """``--seconds 1.5``: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _positive_int(text: str, what: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value
