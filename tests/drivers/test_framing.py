"""pydbgauto.drivers.framing: cutting one reply out of a debugger's stream, from text (pure)."""

from __future__ import annotations

import re

import pytest

from pydbgauto.drivers.framing import MARKER_PREFIX, Reply, ReplyBuffer, end_marker, new_token, start_marker

TOKEN = "0123456789abcdef"
OTHER = "fedcba9876543210"


def framed(token: str, body: str, status: str = "ok", eol: str = "\n") -> str:
    return f"{start_marker(token)}{eol}{body}{eol}{end_marker(token, status)}{eol}"


def test_tokens_are_fresh_16_hex_digits() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tokens)


def test_markers_carry_token_and_status() -> None:
    assert start_marker(TOKEN) == f"{MARKER_PREFIX}-START {TOKEN}@@"
    assert end_marker(TOKEN) == f"{MARKER_PREFIX}-END {TOKEN} ok@@"
    assert end_marker(TOKEN, "error") == f"{MARKER_PREFIX}-END {TOKEN} error@@"


def test_a_reply_with_noise_before_it() -> None:
    buf = ReplyBuffer()
    buf.feed("(lldb) target says hi\n" + framed(TOKEN, "line 1\nline 2"))
    assert buf.take(TOKEN) == Reply(
        token=TOKEN, body="line 1\nline 2", status="ok", noise="(lldb) target says hi\n"
    )
    assert buf.pending == ""


def test_nothing_until_the_end_marker_arrives_even_split_across_reads() -> None:
    whole = f"{start_marker(TOKEN)}\nbody\n{end_marker(TOKEN, 'error')}"
    buf = ReplyBuffer()
    for i, ch in enumerate(whole):
        assert buf.take(TOKEN) is None, f"a reply after only {i} of {len(whole)} characters"
        buf.feed(ch)
    reply = buf.take(TOKEN)  # the end marker's closing "@@" completes it
    assert reply is not None and reply.body == "body" and reply.status == "error"


def test_crlf_line_ends_and_markers_behind_a_prompt() -> None:
    buf = ReplyBuffer()
    buf.feed("0:000> " + framed(TOKEN, "a\r\nb", eol="\r\n") + "0:000> ")
    reply = buf.take(TOKEN)
    assert reply is not None
    assert reply.body == "a\r\nb" and reply.noise == "0:000> "
    assert buf.pending == "0:000> "  # the line break after the end marker went with the reply


def test_an_empty_reply() -> None:
    buf = ReplyBuffer()
    buf.feed(f"{start_marker(TOKEN)}{end_marker(TOKEN)}")
    reply = buf.take(TOKEN)
    assert reply is not None and reply.body == "" and reply.status == "ok"


def test_an_older_reply_whose_caller_gave_up_is_noise() -> None:
    buf = ReplyBuffer()
    late = framed(OTHER, "late output")
    buf.feed(late + framed(TOKEN, "mine"))
    reply = buf.take(TOKEN)
    assert reply is not None and reply.body == "mine" and reply.noise == late
    assert buf.take(OTHER) is None  # dropped with the noise


def test_the_wrong_token_and_a_guessed_end_do_not_cut() -> None:
    buf = ReplyBuffer()
    buf.feed(start_marker(TOKEN) + "\nthe target prints @@PDA-END 0000000000000000 ok@@\n")
    assert buf.take(TOKEN) is None
    assert buf.take(OTHER) is None
    buf.feed(end_marker(TOKEN) + "\n")
    reply = buf.take(TOKEN)
    assert reply is not None and "@@PDA-END 0000000000000000 ok@@" in reply.body


def test_replies_in_a_row_come_out_in_turn() -> None:
    buf = ReplyBuffer()
    buf.feed(framed(TOKEN, "first") + framed(OTHER, "second"))
    first, second = buf.take(TOKEN), buf.take(OTHER)
    assert first is not None and second is not None
    assert (first.body, first.noise, second.body, second.noise) == ("first", "", "second", "")


@pytest.mark.parametrize(
    "stream, noise, left",
    [
        ("prompt> chatter", "prompt> chatter", ""),
        ("chatter\n" + start_marker(TOKEN) + "\npartial", "chatter\n", start_marker(TOKEN) + "\npartial"),
        ("chatter " + end_marker(TOKEN) + " more", "chatter " + end_marker(TOKEN) + " more", ""),
    ],
)
def test_take_noise_keeps_only_an_unfinished_reply(stream: str, noise: str, left: str) -> None:
    buf = ReplyBuffer()
    buf.feed(stream)
    assert buf.take_noise() == noise
    assert buf.pending == left
