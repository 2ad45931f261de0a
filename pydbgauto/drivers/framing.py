"""Cut one command's reply out of a debugger's output stream. Pure: no I/O.

Every command is wrapped in a start and an end marker, each on a line of its own,
with a fresh unguessable token per command. Text outside a matching pair (prompts,
late output of a command that timed out, the target's own printing) is noise and is
handed back separately, never mixed into a reply.
"""

from __future__ import annotations

import re
import secrets
from typing import Optional

import attr

MARKER_PREFIX = "@@PDA"
_MARKER_RE = re.compile(r"@@PDA-(START|END) ([0-9a-f]{16})(?: (\w+))?@@")
_STATUS_RE = re.compile(r"(\w+)@@")  # after an end marker's token (a fixed string: no pattern per reply)


def new_token() -> str:
    """A fresh token: 64 random bits, so no command output can guess it."""
    return secrets.token_hex(8)


def start_marker(token: str) -> str:
    return f"{MARKER_PREFIX}-START {token}@@"


def end_marker(token: str, status: str = "ok") -> str:
    return f"{MARKER_PREFIX}-END {token} {status}@@"


@attr.frozen
class Reply:
    """One framed reply: the text between the markers, and the status the end marker carried."""

    token: str
    body: str
    status: str
    noise: str  # text seen before the start marker (or between replies)


class ReplyBuffer:
    """Collects stream text and hands out complete replies by token.

    Markers may arrive split across reads, and anywhere on a line (a prompt without a
    newline may sit in front of them); the body keeps its own line breaks.
    """

    def __init__(self) -> None:
        self._text = ""

    def feed(self, data: str) -> None:
        self._text += data

    @property
    def pending(self) -> str:
        return self._text

    def take(self, token: str) -> Optional[Reply]:
        """The reply framed by ``token`` if its end marker has arrived, else None.

        Everything before the reply's start marker is returned as ``noise`` and dropped
        from the buffer, including any reply of an older token whose caller gave up.
        """
        start = self._text.find(start_marker(token))
        if start < 0:
            return None
        end_text = f"{MARKER_PREFIX}-END {token} "
        end = self._text.find(end_text, start)
        m = None
        while end >= 0:
            m = _STATUS_RE.match(self._text, end + len(end_text))
            if m is not None:
                break
            end = self._text.find(end_text, end + 1)
        if m is None:
            return None
        body_start = self._text.find("\n", start)
        body_start = len(self._text) if body_start < 0 or body_start > end else body_start + 1
        body = self._text[body_start:end]
        noise = self._text[:start]
        rest_start = m.end()
        if self._text.startswith("\r\n", rest_start):
            rest_start += 2
        elif self._text.startswith("\n", rest_start):
            rest_start += 1
        self._text = self._text[rest_start:]
        return Reply(token=token, body=_strip_trailing_newline(body), status=m.group(1), noise=noise)

    def take_noise(self) -> str:
        """Drop and return everything buffered that is not part of an unfinished reply."""
        m = _MARKER_RE.search(self._text)
        if m and m.group(1) == "START":
            noise, self._text = self._text[: m.start()], self._text[m.start() :]
        else:
            noise, self._text = self._text, ""
        return noise


def _strip_trailing_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text
