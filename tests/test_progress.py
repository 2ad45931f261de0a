"""Live progress (issue 13, item 6): the counts, the terminal line, the notebook view, WatchResult's HTML.

No debugger here: the watch's callbacks are fed with real models. The end-to-end checks (a terminal
line during a real ``pydbgauto watch``, the live view in the triage notebook) are in
tests/integration/test_progress_cli.py and tests/test_notebook.py.
"""

from __future__ import annotations

import io
import time
from types import SimpleNamespace
from typing import Any, Dict, List, Tuple

import pytest

from pydbgauto import progress
from pydbgauto.display import progress_html, snapshot_html, snapshot_markdown
from pydbgauto.models import (
    DecisionRecord,
    DumpRecord,
    ManagedException,
    SnapshotRecord,
    StopEvent,
    ThreadExceptionRecord,
)
from pydbgauto.watching import WatchResult

HOSTILE = '<script>alert("x")</script> | *x*'


def _event(n: int, type_: str = "System.InvalidOperationException", message: str = "boom") -> StopEvent:
    return StopEvent(
        kind="first-chance",
        sequence=n,
        pid=42,
        thread_id=7,
        exception=ManagedException(address=0x1000 + n, type=type_, message=message),
    )


def _feed() -> List[Tuple[str, Dict[str, Any]]]:
    dump = DumpRecord(path="/d/app.core", size=10, seconds=0.1, verified=True)
    return [
        ("armed", {"pid": 42, "versions": {}, "filtered_in_debugger": False, "predicate": "p"}),
        ("decision", {"event": _event(1), "decision": DecisionRecord(action="skip", reason="no-match")}),
        (
            "decision",
            {"event": _event(2, message="x" * 200), "decision": DecisionRecord("dump", "matched", n=1)},
        ),
        ("dump-start", {"event": _event(2), "path": "/d/app.core"}),
        ("dump-done", {"capture": SimpleNamespace(dump=dump)}),
        (
            "decision",
            {
                "event": _event(3, "System.TimeoutException", HOSTILE),
                "decision": DecisionRecord("skip", "limit"),
            },
        ),
        ("done", {"result": SimpleNamespace(ended="max-dumps")}),
    ]


def test_progress_counts_seen_matched_dumps_and_the_last_exception() -> None:
    clock = iter([100.0, 165.0])
    p = progress.Progress(clock=lambda: next(clock))
    for kind, data in _feed()[:5]:
        p.update(kind, data)
    assert (p.pid, p.seen, p.matched, p.dumps, p.status) == (42, 2, 1, 1, "watching")
    assert p.last.startswith("System.InvalidOperationException: xxx") and p.last.endswith("...")
    assert len(p.last) < 100  # a long message is cut
    assert p.line().startswith("[1:05] pid 42: 2 seen, 1 matched, 1 dump; watching; last: ")
    exit_event = StopEvent(kind="exit", sequence=9, exit_status=3)
    p.update("decision", {"event": exit_event, "decision": DecisionRecord("skip", "no-match")})
    assert p.seen == 2 and "exited (status 3)" in p.status  # the exit is not an exception


def test_terminal_progress_draws_one_line_in_place_and_takes_it_away() -> None:
    stream, printed = io.StringIO(), io.StringIO()
    live = progress.TerminalProgress(stream, interval=0.05)

    def printer(kind: str, data: Any) -> None:
        printed.write(f"{kind}\n")

    on_event = live.wrap(printer)
    for kind, data in _feed()[:3]:
        on_event(kind, data)
    time.sleep(0.2)  # the clock ticks on its own
    text = stream.getvalue()
    assert "\n" not in text  # one line, redrawn with carriage returns
    assert text.count("\r\x1b[K") >= 4
    assert "pid 42: 2 seen, 1 matched, 0 dumps; watching" in text
    for kind, data in _feed()[3:]:
        on_event(kind, data)
    live.close()
    assert printed.getvalue().split() == [kind for kind, _ in _feed()]
    assert stream.getvalue().endswith("\r\x1b[K")  # nothing left on the line
    after = stream.getvalue()
    time.sleep(0.15)
    assert stream.getvalue() == after  # the clock stopped


def test_the_live_notebook_view_updates_one_display(monkeypatch: pytest.MonkeyPatch) -> None:
    ipython_display = pytest.importorskip("IPython.display")
    shown: List[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(obj)

    monkeypatch.setattr(
        ipython_display, "display", lambda obj, display_id=False: shown.append(obj) or Handle()
    )
    view = progress.NotebookProgress(min_update=0.0)
    on_event = view.wrap(None)
    for kind, data in _feed():
        on_event(kind, data)
    html = [o.data for o in shown]
    assert len(html) == 1 + len(_feed())
    assert "starting the debugger" in html[0]
    assert "ended: max-dumps" in html[-1] and "&lt;script&gt;" in html[-1] and "<script>" not in html[-1]
    assert not progress.in_notebook()  # pytest is no Jupyter kernel


def test_progress_html_escapes_and_shows_counts() -> None:
    p = progress.Progress()
    for kind, data in _feed():
        p.update(kind, data)
    markup = progress_html(p)
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    for text in ("exceptions seen", "<td>3</td>", "matched", "dumps", "ended: max-dumps"):
        assert text in markup


def test_watch_result_shows_itself_as_html_and_markdown() -> None:
    event = _event(1, message=HOSTILE)
    result = WatchResult(
        captures=(),
        decisions=((event, DecisionRecord("skip", "no-match")),),
        ended="timeout",
        log_path="/tmp/dumps/pydbgauto-decisions.jsonl",
        elapsed=12.5,
    )
    markup = result._repr_html_()
    assert "1 events seen, 1 decisions, 0 captures; ended: timeout after 12.5 s" in markup
    assert "/tmp/dumps/pydbgauto-decisions.jsonl" in markup and "no-match" in markup
    assert "<script>" not in markup
    assert result._repr_markdown_().startswith("1 events seen, 1 decisions, 0 captures; ended: timeout")


def test_snapshot_record_shows_itself() -> None:
    from pydbgauto.sos import parse_clrstack_all

    stacks = parse_clrstack_all(
        "OS Thread Id: 0x2d00\n        Child SP               IP Call Site\n"
        "000000a12b17e490 00007ffdaa8a1c10 System.IO.StreamReader.ReadLine()\n"
        "000000a12b17e560 00007ffdaa8a1432 ThrowingApp.Program.Wait()\n"
    )
    record = SnapshotRecord(
        event=StopEvent(kind="break", sequence=1, pid=42, thread_id=0x2D00),
        stacks=stacks,
        exceptions=(ThreadExceptionRecord(0x2D00, ManagedException(address=1, type="X.Y", message=HOSTILE)),),
        dump=DumpRecord(path="/d/hang.core", size=10, seconds=0.1, verified=True),
    )
    markup = record._repr_html_()  # type: ignore[attr-defined]
    assert "1 managed stacks, 1 current exceptions" in markup
    assert "thread 0x2d00: ThrowingApp.Program.Wait()" in markup  # the top user frame, not ReadLine
    assert "/d/hang.core" in markup and "<script>" not in markup
    assert markup == snapshot_html(record)
    assert "- thread 0x2d00: ThrowingApp.Program.Wait()" in snapshot_markdown(record)
    assert "break-in" in str(record.event)
    assert SnapshotRecord.from_dict(record.to_dict()) == record
