"""The survey's summarising, pure: message folding, grouping, rates, watch commands, the views; and the
multi-process pieces that need no debugger (the shared max_dumps, the pid on printed lines); bad input of
`pydbgauto survey` refused before any debugger starts."""

from __future__ import annotations

import builtins
import io
import json
import re
import shlex
import sys
import threading
import time
from html.parser import HTMLParser
from typing import Any, List, Optional

import pytest

import pydbgauto as pda
from pydbgauto import cli
from pydbgauto.models import ManagedException, ManagedStack, StackFrame, StopEvent
from pydbgauto.multi import MultiPrinter, SharedLimit, SharedLimitState, _PidStream
from pydbgauto.policy import DumpPolicy
from pydbgauto.surveying import SurveyResult, fold_message, message_regex, summarise, survey_html

T0 = 1_700_000_000.0


def event(
    type_name: Optional[str],
    message: Optional[str],
    site: str = "App.Orders.Place()",
    thread: int = 0x10,
    at: float = 1.0,
    kind: str = "first-chance",
    sequence: int = 1,
) -> StopEvent:
    frames = (
        StackFrame(
            sp=1, ip=2, call_site="System.Runtime.EH.DispatchEx()", method="System.Runtime.EH.DispatchEx()"
        ),
        StackFrame(sp=3, ip=4, call_site=site, method=site),
        StackFrame(sp=5, ip=6, call_site="App.Main()", method="App.Main()"),
    )
    exc = (
        None
        if type_name is None
        else ManagedException(address=0x1000 + sequence, type=type_name, message=message)
    )
    return StopEvent(
        kind=kind,
        sequence=sequence,
        pid=42,
        thread_id=thread,
        exception_address=0x1000 + sequence,
        exception=exc,
        stack=ManagedStack(os_thread_id=thread, frames=frames),
        time=T0 + at,
    )


# ----- folding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, folded",
    [
        ("Order 42 was rejected: card declined", "Order <n> was rejected: card declined"),
        ("took 12.5 s, retry 3", "took <n> s, retry <n>"),
        ("object 0x7f3a12 freed", "object <hex> freed"),
        ("request 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed", "request <guid> failed"),
        ("hash 9f86d081884c7d65 mismatch", "hash <hex> mismatch"),
        ("System.Int32 in utf8 and deadbeef", "System.Int32 in utf8 and deadbeef"),  # words keep digits
        ("no numbers here", "no numbers here"),
        ("", ""),
    ],
)
def test_fold_message(message: str, folded: str) -> None:
    assert fold_message(message) == folded


def test_fold_none_stays_none() -> None:
    assert fold_message(None) is None and message_regex(None) is None


@pytest.mark.parametrize(
    "message, sibling, stranger",
    [
        ("Order 42 was rejected (card)", "Order 7 was rejected (card)", "Order 7 was rejected (cash)"),
        (
            "id 3fa85f64-5717-4562-b3fc-2c963f66afa6 at 0x1f",
            "id 00000000-0000-0000-0000-000000000000 at 0xAB",
            "id x at 0x1",
        ),
        ("a.b*c+[d] $5 ^ {2} | \\ ?", "a.b*c+[d] $77 ^ {3} | \\ ?", "aXb*c+[d] $5 ^ {2} | \\ ?"),
    ],
)
def test_message_regex_matches_the_pattern_and_only_it(message: str, sibling: str, stranger: str) -> None:
    regex = message_regex(message)
    assert regex is not None
    assert re.search(regex, message) and re.search(regex, sibling)
    assert not re.search(regex, stranger)
    assert fold_message(message) == fold_message(sibling)


# ----- grouping -------------------------------------------------------------------------------------


def sample() -> SurveyResult:
    events = [
        event("System.InvalidOperationException", f"Order {i} failed", thread=0x10 + i % 2, at=i, sequence=i)
        for i in range(1, 7)
    ]
    events += [
        event("System.InvalidOperationException", "Order 9 failed", site="App.Other.Run()", at=7, sequence=7)
    ]
    events += [event("System.TimeoutException", "Backend did not answer", thread=0x20, at=8, sequence=8)]
    events += [event("System.TimeoutException", None, thread=0x20, at=9, kind="second-chance", sequence=9)]
    events += [event(None, None, at=9.5, sequence=10)]  # SOS could not read it
    events += [StopEvent(kind="exit", sequence=11, pid=42, exit_status=0)]
    return summarise(events, 10.0, pid=42, process="App", target=("--pid", "42"), started=T0)


def test_rows_group_type_pattern_and_site_most_frequent_first() -> None:
    result = sample()
    assert result.total == 10 and result.unread == 1  # the exit is not an exception
    first = result.rows[0]
    assert (first.n, first.type, first.pattern, first.site, first.count) == (
        1,
        "System.InvalidOperationException",
        "Order <n> failed",
        "App.Orders.Place()",
        6,
    )
    assert first.rate == pytest.approx(0.6)
    assert {t.key: t.count for t in first.threads} == {"0x10": 3, "0x11": 3}
    assert (first.first_seen, first.last_seen) == (1.0, 6.0)
    # the same type and pattern from another site is a row of its own
    other = [r for r in result.rows if r.site == "App.Other.Run()"]
    assert len(other) == 1 and other[0].count == 1
    # no message is its own pattern (None), not the empty string
    timeouts = [r for r in result.rows if r.type == "System.TimeoutException"]
    assert sorted((r.pattern or "<none>", r.first_chance, r.second_chance) for r in timeouts) == [
        ("<none>", 0, 1),
        ("Backend did not answer", 1, 0),
    ]
    assert [r.n for r in result.rows] == list(range(1, len(result.rows) + 1))
    assert sum(r.count for r in result.rows) == result.total


def test_breakdowns_by_type_site_and_thread() -> None:
    result = sample()
    assert [(c.key, c.count) for c in result.by_type] == [
        ("System.InvalidOperationException", 7),
        ("System.TimeoutException", 2),
        ("?", 1),
    ]
    assert result.by_type[0].rate == pytest.approx(0.7)
    threads = {c.key: c.count for c in result.by_thread}
    assert threads == {"0x10": 5, "0x11": 3, "0x20": 2}  # rows 1 (3), 2 (1) and the unread one
    assert {c.key: c.count for c in result.by_site}["App.Orders.Place()"] == 9
    assert result.rate == pytest.approx(1.0)


def test_watch_command_for_a_row_selects_that_row() -> None:
    result = sample()
    command = result.watch_command(1, dump_dir="/tmp/my dumps")
    argv = shlex.split(command)
    assert argv[:4] == ["pydbgauto", "watch", "--pid", "42"]
    args = cli._parser().parse_args(argv[1:])  # the suggestion is a valid watch command line
    predicate = cli.build_predicate(args)
    assert args.dump_dir == "/tmp/my dumps"
    assert predicate is not None
    from pydbgauto.predicates import Facts, evaluate

    def matches(ev: StopEvent) -> bool:
        return evaluate(predicate, Facts(event=ev)).matched

    assert matches(event("System.InvalidOperationException", "Order 12345 failed"))
    assert not matches(event("System.InvalidOperationException", "Order 1 failed", site="App.Other.Run()"))
    assert not matches(event("System.InvalidOperationException", "Order x failed"))
    assert not matches(event("System.TimeoutException", "Order 1 failed"))
    with pytest.raises(pda.ConfigurationError, match="rows 1 to"):
        result.watch_command(99)


def test_no_message_row_has_no_message_option() -> None:
    result = sample()
    row = next(r for r in result.rows if r.type == "System.TimeoutException" and r.pattern is None)
    assert "--message" not in row.watch_args and "--type" in row.watch_args


def test_to_dict_round_trip_and_json() -> None:
    result = sample()
    data = json.loads(json.dumps(result.to_dict()))
    assert SurveyResult.from_dict(data) == result
    assert data["rows"][0]["threads"][0]["key"] in ("0x10", "0x11")


def test_empty_survey() -> None:
    result = summarise([], 5.0, pid=1, target=("--pid", "1"))
    assert result.total == 0 and result.rows == () and result.rate == 0.0
    assert "0 exceptions" in str(result)
    assert "no exception was thrown" in result._repr_html_()


def test_summarise_refuses_a_bad_duration() -> None:
    with pytest.raises(pda.ConfigurationError):
        summarise([], float("nan"))


# ----- views ----------------------------------------------------------------------------------------


class _Checker(HTMLParser):
    VOID = {"img", "br", "hr", "meta", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: List[str] = []
        self.tags: List[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()


def check_html(text: str) -> List[str]:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == []
    return checker.tags


def hostile() -> SurveyResult:
    evil = "<script>alert(1)</script> \"x=' 42"
    return summarise([event(evil, evil, site=evil)], 1.0, pid=1, target=("--pid", "1"))


def test_html_is_a_table_with_everything_escaped() -> None:
    text = sample()._repr_html_()
    tags = check_html(text)
    assert "table" in tags and text.count("<tr>") >= 1 + len(sample().rows)
    assert "pydbgauto watch --pid 42" in text
    evil = hostile()._repr_html_()
    check_html(evil)
    assert "<script>" not in evil and "&lt;script&gt;" in evil


def test_html_chart_with_matplotlib() -> None:
    pytest.importorskip("matplotlib")
    assert 'src="data:image/png;base64,' in sample()._repr_html_()


def test_html_falls_back_to_the_table_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    text = survey_html(sample())
    assert "<img" not in text and "<table" in text
    check_html(text)


def test_text_summary_lists_rows_and_their_commands() -> None:
    text = str(sample())
    assert text.splitlines()[0].startswith("pid 42 (App): 10 exceptions in 10.0 s (1.00/s)")
    assert "Order <n> failed" in text and "by thread:" in text
    assert "  1: pydbgauto watch --pid 42 --type System.InvalidOperationException" in text


# ----- pydbgauto survey: bad input, before any debugger ---------------------------------------------


@pytest.mark.parametrize(
    "argv, says",
    [
        (["survey", "--pid", "1", "--seconds", "0"], "positive number of seconds"),
        (["survey", "--pid", "1", "--seconds", "-3"], "positive number of seconds"),
        (["survey", "--pid", "1", "--seconds", "nan"], "positive number of seconds"),
        (["survey", "--pid", "1", "--name", "x", "--seconds", "5"], "not allowed with argument"),
        (["survey", "--seconds", "5"], "one of the arguments --pid --name is required"),
        (["survey", "--pid", "0", "--seconds", "5"], "not a positive integer"),
        (["survey", "--pid", "1"], "--seconds"),
    ],
)
def test_bad_survey_arguments(argv: List[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert says in capsys.readouterr().err
    assert time.monotonic() - started < 2


def test_survey_of_a_name_no_process_has(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["survey", "--name", "pdaNoSuchProcessZ", "--seconds", "5"]) == 3
    assert "no process called 'pdaNoSuchProcessZ'" in capsys.readouterr().err
    assert cli.main(["survey", "--name", "a/b", "--seconds", "5"]) == 2
    assert cli.main(["survey", "--pid", "4194305", "--seconds", "5"]) == 3  # above pid_max: never running
    err = capsys.readouterr().err
    assert "no process with pid 4194305" in err and "a survey stops the process" not in err  # no warning


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"pid": 1, "seconds": 0}, "seconds > 0"),
        ({"pid": 1, "seconds": True}, "seconds > 0"),
        ({"pid": 1, "seconds": float("inf")}, "seconds > 0"),
        ({"pid": 1, "name": "x", "seconds": 5}, "exactly one"),
        ({"seconds": 5}, "exactly one"),
        ({"pid": -4, "seconds": 5}, "positive integer"),
    ],
)
def test_bad_survey_calls(kwargs: Any, says: str) -> None:
    with pytest.raises(pda.ConfigurationError, match=says):
        pda.survey(**kwargs)


# ----- every process of a name: the pieces without a debugger ------------------------------------------


def test_max_dumps_is_a_total_across_processes(tmp_path: Any) -> None:
    policy = DumpPolicy(dump_dir=str(tmp_path), max_dumps=3)
    stop = threading.Event()
    shared = SharedLimit(3, stop)
    a, b = SharedLimitState(policy, shared), SharedLimitState(policy, shared)
    seq = iter(range(1, 100))

    def decide(state: SharedLimitState, site: str) -> Any:
        return state.decide(
            event("System.X", "m", site=site, sequence=next(seq)), True, time.monotonic(), None
        )

    assert decide(a, "A.One()").action == "dump"
    assert decide(b, "B.One()").action == "dump"
    assert decide(a, "A.One()").reason == "duplicate-stack"  # per process: a's own signature
    assert not stop.is_set()
    third = decide(b, "B.Two()")
    assert (third.action, third.n) == ("dump", 2)  # b's second dump; its file name number
    assert stop.is_set() and shared.dumps == 3
    late = decide(a, "A.Two()")
    assert late.reason == "limit" and "across all processes" in late.detail and "1 of them" in late.detail
    assert decide(a, "A.One()").reason == "duplicate-stack"  # earlier checks keep their reasons
    assert a.dumps == 1 and b.dumps == 2
    assert decide(a, "A.Three()").reason == "limit"


def test_skip_first_stays_per_process(tmp_path: Any) -> None:
    policy = DumpPolicy(dump_dir=str(tmp_path), max_dumps=None, skip_first=1, dedupe_stack=False)
    shared = SharedLimit(None, threading.Event())
    a, b = SharedLimitState(policy, shared), SharedLimitState(policy, shared)
    first_a = a.decide(event("System.X", "m", sequence=1), True, 0.0, None)
    first_b = b.decide(event("System.X", "m", sequence=2), True, 0.0, None)
    assert first_a.reason == first_b.reason == "skip-first"
    assert a.decide(event("System.X", "m", sequence=3), True, 0.0, None).action == "dump"


def test_pid_on_every_printed_line() -> None:
    out = io.StringIO()
    stream = _PidStream(out, 7, as_json=False)
    stream.write("one\ntw")
    stream.write("o\n")
    assert out.getvalue() == "[pid 7] one\n[pid 7] two\n"
    out = io.StringIO()
    _PidStream(out, 7, as_json=True).write(json.dumps({"event": "exception", "type": "X"}) + "\n")
    assert json.loads(out.getvalue()) == {"pid": 7, "event": "exception", "type": "X"}


def test_multi_printer_prints_each_process_with_its_pid() -> None:
    out = io.StringIO()
    printer = MultiPrinter(out, as_json=True)
    ev = event("System.X", "boom", sequence=3)
    from pydbgauto.models import DecisionRecord

    printer("decision", {"pid": 42, "event": ev, "decision": DecisionRecord("skip", "no-match")})
    printer("process-error", {"pid": 43, "error": "NotDotnetError: no runtime"})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["pid"] == 42 and lines[0]["event"] == "exception" and lines[0]["type"] == "System.X"
    assert lines[1] == {"event": "process-error", "pid": 43, "error": "NotDotnetError: no runtime"}


def test_multi_result_views() -> None:
    from pydbgauto.models import CaptureRecord, DecisionRecord
    from pydbgauto.multi import MultiWatchResult
    from pydbgauto.watching import WatchResult

    def one(pid: int, at: float) -> WatchResult:
        ev = attr_evolve(event("System.X", "<b>boom</b>", at=at), pid=pid)
        capture = CaptureRecord(
            event=ev, decision=DecisionRecord("dump", "matched", n=1), exception=ev.exception
        )
        return WatchResult((capture,), ((ev, capture.decision),), "stopped", "/tmp/log.jsonl", 1.0)

    result = MultiWatchResult(
        "App",
        ((7, one(7, 5.0)), (8, one(8, 2.0))),
        ((9, "NotDotnetError: x"),),
        "max-dumps",
        "/tmp/log.jsonl",
        3.0,
    )
    assert [c.event.pid for c in result.captures] == [8, 7]  # in the order they were seen
    assert (result.events_seen, result.matched, result.pids) == (2, 2, (7, 8))
    assert "2 processes called 'App' watched" in str(result) and "pid 9 (NotDotnetError: x)" in str(result)
    text = result._repr_html_()
    check_html(text)
    assert "pid 7" in text and "<b>boom" not in text


def attr_evolve(ev: StopEvent, **changes: Any) -> StopEvent:
    import attr

    return attr.evolve(ev, **changes)


def test_several_processes_key_threads_by_pid() -> None:
    events = [
        attr_evolve(event("System.X", f"n {i}", thread=0x10, sequence=i), pid=100 + i % 2) for i in range(5)
    ]
    result = summarise(events, 5.0, process="App", target=("--name", "App"))
    assert {c.key: c.count for c in result.by_pid} == {"100": 3, "101": 2}
    assert {c.key: c.count for c in result.by_thread} == {"100:0x10": 3, "101:0x10": 2}
    assert len(result.rows) == 1 and {t.key for t in result.rows[0].threads} == {"100:0x10", "101:0x10"}
    text = str(result)
    assert text.startswith("2 processes (App): 5 exceptions") and "by process:" in text
    assert result.watch_command(1).startswith("pydbgauto watch --name App --type System.X")
    one = summarise(events[:1], 1.0, pid=100)
    assert [c.key for c in one.by_thread] == ["0x10"]  # one process: plain thread ids
