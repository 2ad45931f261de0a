"""cdb's own text: prompts, symbol noise, the marker lines, the module list."""

from __future__ import annotations

import pytest

from pydbgauto.drivers.cdb_prompt import (
    clean_reply,
    detect_runtime,
    ends_with_prompt,
    marker_command,
    strip_prompts,
)
from pydbgauto.drivers.framing import ReplyBuffer


@pytest.mark.parametrize("text", ["0:000> ", "x\r\n1:019> ", "ok\n0:000:x86> ", "?:???> "])
def test_ends_with_prompt(text: str) -> None:
    assert ends_with_prompt(text)


@pytest.mark.parametrize("text", ["0:000>", "value 0:000> x", "", "(lldb) "])
def test_not_a_prompt(text: str) -> None:
    assert not ends_with_prompt(text)


def test_strip_prompts_and_clean() -> None:
    assert strip_prompts("0:000> 0:000> a\n0:000> b") == "a\nb"
    assert clean_reply("0:000> x***** WARNING: Unable to verify checksum for a.dll\r\ny\r\n0:000> ") == "x**y"


def test_marker_command_does_not_contain_the_marker_but_prints_it() -> None:
    line = marker_command("0123456789abcdef", end=False)
    assert "@@PDA-START" not in line
    printed = "@" + line.split('"')[1][2:].replace("\\n", "\n")  # what '%c' with 0x40 gives
    buf = ReplyBuffer()
    buf.feed("0:000> " + printed + "0:000> body\n0:000> ")
    end = marker_command("0123456789abcdef", end=True)
    buf.feed("@" + end.split('"')[1][2:].replace("\\n", "\n"))
    reply = buf.take("0123456789abcdef")
    assert reply is not None and clean_reply(reply.body) == "body"


def test_detect_runtime() -> None:
    lm = (
        "start             end                 module name\n"
        "00007ff6`4a3b0000 00007ff6`4a3d8000   app   (deferred)\n"
        "00007ffe`0a1d0000 00007ffe`0a5e5000   clr    (deferred)\n"
    )
    assert detect_runtime(lm) == "clr"
    assert detect_runtime(lm.replace(" clr ", " mscorwks ")) == "mscorwks"
    assert detect_runtime(lm.replace(" clr ", " clrjit ")) is None
    assert detect_runtime("01000000 01010000   coreclr    (deferred)") == "coreclr"
