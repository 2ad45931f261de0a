"""parse_dump_result: table of (reply text, expected fields)."""

from __future__ import annotations

from typing import Optional

import pytest

from pydbgauto import ParseError, parse_dump_result

CASES = [
    (
        "Creating C:\\dumps\\a.dmp - mini user dump\r\nDump successfully written\r\n",
        "C:\\dumps\\a.dmp",
        True,
        None,
    ),
    (
        '0:000> .dump /ma "C:\\Win dows\\x.dmp"\nCreating C:\\Win dows\\x.dmp - mini user dump\n'
        'Dump creation failed, Win32 error 0n5\n    "Access is denied."\n',
        "C:\\Win dows\\x.dmp",
        False,
        'Dump creation failed, Win32 error 0n5 "Access is denied."',
    ),
    (
        "Creating C:\\d\\x - y.dmp - user full dump\nDump successfully written\n",
        "C:\\d\\x - y.dmp",
        True,
        None,
    ),
    ("Creating C:\\d\\x.dmp - mini user dump\n", "C:\\d\\x.dmp", False, "cut short"),
]


@pytest.mark.parametrize("text,path,success,error", CASES)
def test_dump_reply(text: str, path: str, success: bool, error: Optional[str]) -> None:
    result = parse_dump_result(text)
    assert (result.path, result.success) == (path, success)
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None and error in result.error


@pytest.mark.parametrize("text", ["", "0:000> \n", "hello\n", "Creating nothing\n"])
def test_not_a_dump_reply(text: str) -> None:
    with pytest.raises(ParseError):
        parse_dump_result(text)


def test_success_without_creating_line() -> None:
    result = parse_dump_result("Dump successfully written\n")
    assert (result.path, result.success, result.error) == (None, True, None)
