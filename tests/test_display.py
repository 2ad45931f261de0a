"""pydbgauto.display: structure, escaping and well-formedness of the HTML / Markdown views, install_reprs.

Models come from the recorded-from-documentation transcripts (parsed by the real parsers) and from
hand-built hostile values. ``capture_record_double`` / ``watch_result_double`` are test doubles:
SimpleNamespace stand-ins for the CaptureRecord / WatchResult classes that do not exist yet.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydbgauto import display
from pydbgauto.display import (
    capture_html,
    capture_markdown,
    dump_html,
    dump_markdown,
    event_html,
    event_markdown,
    exception_html,
    exception_markdown,
    install_reprs,
    is_framework_frame,
    markdown_escape,
    stack_html,
    stack_markdown,
    threads_html,
    threads_markdown,
    watch_result_html,
    watch_result_markdown,
)
from pydbgauto.models import (
    DumpRecord,
    ExceptionFrame,
    ManagedException,
    ManagedStack,
    ManagedThread,
    StackFrame,
    StopEvent,
    ThreadTable,
)
from pydbgauto.sos import parse_clrstack, parse_pe, parse_threads

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts" / "cdb-documented"

HOSTILE = (
    "<script>alert(1)</script> \"onmouseover=alert(2) x=' | pipes | `tick` *b* _u_ [l](u) \\ & é→中\nline 2"
)
HOSTILE_SHORT = '<script>x</script>"onmouseover=y'

# ---------------------------------------------------------------------------------------------
# test helpers: a strict HTML checker

VOID = {"br", "hr", "img", "meta", "wbr", "input", "col", "link"}
ALLOWED_TAGS = set("div style table thead tbody tr th td span code b pre details summary".split())
ALLOWED_ATTRS = {"class", "title", "open"}


class Checker(HTMLParser):
    """Records tags, attributes and text; fails on unbalanced or misnested tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: List[str] = []
        self.errors: List[str] = []
        self.tags: List[Tuple[str, Dict[str, Optional[str]]]] = []
        self.text: List[str] = []
        self.css: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        (self.css if self.stack and self.stack[-1] == "style" else self.text).append(data)


def check_html(markup: str) -> Checker:
    checker = Checker()
    checker.feed(markup)
    checker.close()
    assert checker.errors == []
    assert checker.stack == [], f"unclosed: {checker.stack}"
    tags = {tag for tag, _ in checker.tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    for tag, attrs in checker.tags:
        assert set(attrs) <= ALLOWED_ATTRS, (tag, attrs)
    # one root div of class pydbgauto, holding everything
    assert checker.tags[0][0] == "div" and "pydbgauto" in (checker.tags[0][1]["class"] or "").split()
    assert markup.startswith("<div ") and markup.endswith("</div>")
    assert [tag for tag, _ in checker.tags].count("style") == 1
    return checker


def text_of(markup: str) -> str:
    return "".join(check_html(markup).text)


def rows_with_class(markup: str, cls: str) -> List[str]:
    """The class attributes of the <tr> rows that have class ``cls`` (works on fragments too)."""
    return [c for c in re.findall(r'<tr class="([^"]*)"', markup) if cls in c.split()]


def row_htmls(markup: str) -> List[str]:
    """The <tr ...>...</tr> pieces of frame tables (tr never nests in our markup)."""
    return re.findall(r'<tr class="pdg-frame[^"]*">.*?</tr>', markup, re.S)


# ---------------------------------------------------------------------------------------------
# models


def transcript(name: str) -> str:
    return (TRANSCRIPTS / name).read_text(encoding="utf-8")


def must(value: Optional[ManagedException]) -> ManagedException:
    assert value is not None
    return value


PE = must(parse_pe(transcript("pe-cdb-inner-backticks.txt")))
PE_NESTED = must(parse_pe(transcript("pe-cdb-nested-single-spaced-x86.txt")))
CLRSTACK = parse_clrstack(transcript("clrstack-cdb-helper-frame-noise.txt"))
THREADS = parse_threads(transcript("clrthreads-cdb-exception-finalizer-dead.txt"))


PROGRAM_CS = "/src/ThrowingApp/Program.cs"


def sframe(call_site: str, kind: str = "managed", sp: int = 0x100, **kw: Any) -> StackFrame:
    method = call_site if kind == "managed" else None
    return StackFrame(sp=sp, ip=sp + 1, call_site=call_site, kind=kind, method=method, **kw)


MIXED_STACK = ManagedStack(
    os_thread_id=0x2F7C,
    debugger_thread_index=1,
    frames=(
        sframe("libcoreclr.so!IL_Throw + 60", kind="native", sp=0x10, module="libcoreclr.so"),
        sframe("[HelperMethodFrame: 00007ffc1e9c8a28]", kind="runtime", sp=0x20, frame_type="HelperMethod"),
        sframe("System.Runtime.EH.DispatchEx(System.Runtime.StackFrameIterator ByRef)", sp=0x30),
        sframe("ThrowingApp.Program.Throw(Int32)", sp=0x40, source_file=PROGRAM_CS, line=42),
        sframe("Microsoft.Extensions.Hosting.Internal.Host.StartAsync()", sp=0x50),
        sframe("Internal.Runtime.CompilerHelpers.StartupCode.Main()", sp=0x60),
        sframe("System.Threading.Tasks.Task.Run()", sp=0x70, source_file="/_/Task.cs", line=7),
        sframe("ThrowingApp.Program.Main(System.String[])", sp=0x80, source_file=PROGRAM_CS, line=12),
    ),
)  # fmt: skip

HOSTILE_EXC = ManagedException(
    address=0xDEAD,
    type=HOSTILE_SHORT + ".Type",
    message=HOSTILE,
    inner_type="<b>Inner</b>",
    inner_address=0xBEEF,
    frames=(
        ExceptionFrame(
            sp=1, ip=2, module="Evil<img src=x>", method=HOSTILE, offset=3, source_file=HOSTILE, line=9
        ),
    ),
    stack_trace_string=HOSTILE,
    hresult=0x80131509,
    has_nested=True,
    nested=(ManagedException(address=0x1, type="System.ArgumentException", message=HOSTILE),),
)
HOSTILE_STACK = ManagedStack(
    os_thread_id=7,
    frames=(sframe(HOSTILE, sp=0x40, source_file=HOSTILE, line=1), sframe("System." + HOSTILE, sp=0x50)),
    error=HOSTILE,
)
HOSTILE_THREADS = ThreadTable(
    thread_count=2,
    hosted_runtime=HOSTILE,
    threads=(
        ManagedThread(
            dbg_id=0,
            managed_id=1,
            os_id=0x10,
            thread_obj=0x20,
            state=0x2A020,
            gc_mode=HOSTILE_SHORT,
            apartment="MTA",
            special=HOSTILE + ", Finalizer",
            exception_type=HOSTILE,
            exception_address=0x30,
            nested=True,
        ),
    ),
)
HOSTILE_EVENT = StopEvent(
    kind="first-chance",
    sequence=3,
    pid=4242,
    thread_id=7,
    exception_address=0xDEAD,
    exception=HOSTILE_EXC,
    stack=HOSTILE_STACK,
    type_chain=(HOSTILE_SHORT, "System.Exception"),
    description=HOSTILE,
    error=HOSTILE,
    time=1_700_000_000.25,
)
HOSTILE_DUMP = DumpRecord(
    path=HOSTILE,
    size=123_456_789,
    seconds=1.5,
    sha256="ab" * 32,
    verified=False,
    reader=HOSTILE_SHORT,
    verify_error=HOSTILE,
    seen_exception_type=HOSTILE,
)
GOOD_DUMP = DumpRecord(
    path="/tmp/core.4242",
    size=2_000_000,
    seconds=0.25,
    verified=True,
    reader="dotnet-dump analyze",
    verify_seconds=3.0,
    seen_exception_type="System.InvalidOperationException",
    seen_thread_id=0x4D20,
)


def event_for(stack: ManagedStack, exc: ManagedException = PE) -> StopEvent:
    return StopEvent(
        kind="first-chance", sequence=1, thread_id=stack.os_thread_id, exception=exc, stack=stack
    )


def capture_record_double(**fields: Any) -> SimpleNamespace:
    """Test double for the coming CaptureRecord: only the attributes display.py reads."""
    base: Dict[str, Any] = {"event": None, "exception": None, "stack": None, "dump": None, "decision": None}
    base.update(fields)
    return SimpleNamespace(**base)


def decision_double(action: str, reason: str, detail: Any = None) -> SimpleNamespace:
    """Test double for a policy decision (action, reason, detail)."""
    return SimpleNamespace(action=action, reason=reason, detail=detail)


def watch_result_double(**fields: Any) -> SimpleNamespace:
    """Test double for the coming WatchResult."""
    return SimpleNamespace(**fields)


HOSTILE_CAPTURE = capture_record_double(
    event=HOSTILE_EVENT, dump=HOSTILE_DUMP, decision=decision_double("dump", HOSTILE, {"rule": HOSTILE})
)
HOSTILE_WATCH = watch_result_double(
    captures=[HOSTILE_CAPTURE],
    decisions=[decision_double(HOSTILE_SHORT, HOSTILE), (HOSTILE_EVENT, decision_double("skip", HOSTILE))],
    events_seen=[HOSTILE_EVENT],
)

HTML_VIEWS: List[Tuple[str, Callable[[Any], str], Any]] = [
    ("exception", exception_html, HOSTILE_EXC),
    ("stack", stack_html, HOSTILE_STACK),
    ("threads", threads_html, HOSTILE_THREADS),
    ("event", event_html, HOSTILE_EVENT),
    ("dump", dump_html, HOSTILE_DUMP),
    ("capture", capture_html, HOSTILE_CAPTURE),
    ("watch", watch_result_html, HOSTILE_WATCH),
]
MD_VIEWS: List[Tuple[str, Callable[[Any], str], Any]] = [
    ("exception", exception_markdown, HOSTILE_EXC),
    ("stack", stack_markdown, HOSTILE_STACK),
    ("threads", threads_markdown, HOSTILE_THREADS),
    ("event", event_markdown, HOSTILE_EVENT),
    ("dump", dump_markdown, HOSTILE_DUMP),
    ("capture", capture_markdown, HOSTILE_CAPTURE),
    ("watch", watch_result_markdown, HOSTILE_WATCH),
]
REAL_HTML: List[Tuple[str, Callable[[Any], str], Any]] = [
    ("exception", exception_html, PE),
    ("exception-nested", exception_html, PE_NESTED),
    ("stack", stack_html, CLRSTACK),
    ("threads", threads_html, THREADS),
    ("event", event_html, event_for(CLRSTACK)),
    ("dump", dump_html, GOOD_DUMP),
]


# ---------------------------------------------------------------------------------------------
# well-formed, scoped, self-contained


@pytest.mark.parametrize(
    "name,render,value", HTML_VIEWS + REAL_HTML, ids=lambda x: x if isinstance(x, str) else ""
)
def test_html_is_well_formed_scoped_and_self_contained(
    name: str, render: Callable[[Any], str], value: Any
) -> None:
    markup = render(value)
    checker = check_html(markup)
    assert f"pdg-{name.split('-')[0]}" in (checker.tags[0][1]["class"] or "")
    css = "".join(checker.css)
    selectors = [
        s.strip() for block in css.split("}") if block.strip() for s in block.split("{")[0].split(",")
    ]
    assert selectors and all(s.startswith(".pydbgauto") for s in selectors), selectors
    for forbidden in ("url(", "@import", "http:", "https:", "javascript:", "expression("):
        assert forbidden not in markup.lower()


def test_hostile_text_is_escaped_not_dropped() -> None:
    for _, render, value in HTML_VIEWS:
        markup = render(value)
        assert (
            "<script" not in markup.lower()
            and "<img" not in markup.lower()
            and "<b>inner" not in markup.lower()
        )
        checker = check_html(markup)
        for _, attrs in checker.tags:
            assert not any(a.startswith("on") for a in attrs)
        # the hostile text survives as text, character for character (multi-line and non-ASCII included)
        assert HOSTILE in "".join(checker.text) or HOSTILE_SHORT in "".join(checker.text)
    assert HOSTILE in text_of(exception_html(HOSTILE_EXC))
    assert "<b>Inner</b>" in text_of(exception_html(HOSTILE_EXC))
    assert "&lt;script&gt;" in exception_html(HOSTILE_EXC)


def test_attributes_are_double_quoted_and_hold_escaped_text() -> None:
    tag_re = re.compile(r'<[a-z]+(?: [a-z-]+="[^"<>]*"| open)*>|</[a-z]+>')
    for _, render, value in HTML_VIEWS:
        markup = render(value)
        # every tag as written is <name attr="value" ...> (or a bare "open"); no < or > between tags
        assert markup.count("<") == len(tag_re.findall(markup))
        for piece in tag_re.split(markup):
            assert "<" not in piece and ">" not in piece, piece[:80]
    # a frame's title attribute carries the full (hostile) signature, unbroken
    site_titles = [
        a["title"]
        for t, a in check_html(stack_html(HOSTILE_STACK)).tags
        if t == "td" and a.get("class") == "pdg-site"
    ]
    assert site_titles[0] == HOSTILE


# ---------------------------------------------------------------------------------------------
# structure: user vs framework, throw site, source lines


def test_is_framework_frame() -> None:
    kinds = [is_framework_frame(f) for f in MIXED_STACK.frames]
    assert kinds == [True, True, True, False, True, True, True, False]
    assert not is_framework_frame(
        ExceptionFrame(sp=1, ip=2, module="ThrowingApp", method="ThrowingApp.P.M()")
    )
    assert is_framework_frame(
        ExceptionFrame(sp=1, ip=2, module="System_Private_CoreLib", method="System.X.Y()")
    )
    # -f prints a module prefix on the call site; the method decides
    f_frame = StackFrame(
        sp=1, ip=2, call_site="System.Private.CoreLib.dll!System.X.Y() + 4", method="System.X.Y()"
    )
    assert is_framework_frame(f_frame)
    assert not is_framework_frame(StackFrame(sp=1, ip=2, call_site="SystemX.Thing()"))


def test_stack_marks_user_frames_bold_and_framework_muted() -> None:
    markup = stack_html(MIXED_STACK)
    rows = row_htmls(markup)
    assert len(rows) == len(MIXED_STACK.frames)
    for row, frame in zip(rows, MIXED_STACK.frames):
        classes = re.match(r'<tr class="([^"]*)"', row).group(1).split()  # type: ignore[union-attr]
        if is_framework_frame(frame):
            assert "pdg-framework" in classes and "pdg-user" not in classes and "<b>" not in row
        else:
            assert "pdg-user" in classes and "pdg-framework" not in classes and "<b><code>" in row
        assert f"pdg-kind-{frame.kind}" in classes
    assert len(rows_with_class(markup, "pdg-user")) == 2
    css = "".join(check_html(markup).css)
    assert ".pydbgauto .pdg-user{font-weight:bold}" in css and "pdg-framework{opacity" in css


def test_stack_shows_source_file_and_line() -> None:
    text = text_of(stack_html(MIXED_STACK))
    assert "/src/ThrowingApp/Program.cs:42" in text and "/src/ThrowingApp/Program.cs:12" in text
    real = text_of(stack_html(CLRSTACK))
    assert "D:\\src\\ThrowingApp\\Program.cs:42" in real
    assert "[HelperMethodFrame: 000000d56e57e7b8]" in real
    assert "000000d56e57e8a0" in real  # SP as clrstack prints it
    no_line = ManagedStack(os_thread_id=1, frames=(sframe("A.B()", source_file="a.cs"),))
    assert "a.cs" in text_of(stack_html(no_line)) and "a.cs:" not in text_of(stack_html(no_line))


def test_event_marks_the_throw_site_once_past_the_dispatch_frames() -> None:
    event = event_for(MIXED_STACK)
    assert event.throw_site is MIXED_STACK.frames[3]
    markup = event_html(event)
    sites = [r for r in row_htmls(markup) if "pdg-throw-site" in r.split(">")[0]]
    # one in the stack (Throw), one in the exception's frames (pe's first frame)
    stack_sites = [r for r in sites if "ThrowingApp.Program.Throw(Int32)" in r]
    assert len(stack_sites) == 1 and display.THROW_SITE_LABEL in stack_sites[0]
    assert not any("DispatchEx" in r for r in sites)
    assert "thrown in" in text_of(
        markup
    ) and "ThrowingApp.Program.Throw(Int32) (/src/ThrowingApp/Program.cs:42)" in (text_of(markup))
    # a bare stack does not know it threw: nothing marked unless told
    assert rows_with_class(stack_html(MIXED_STACK), "pdg-throw-site") == []
    assert display.THROW_SITE_LABEL not in text_of(stack_html(MIXED_STACK))
    told = stack_html(MIXED_STACK, throw_site=MIXED_STACK.frames[7])
    assert [r for r in row_htmls(told) if "pdg-throw-site" in r.split(">")[0]] == [row_htmls(told)[7]]


def test_exception_view_shows_the_chain() -> None:
    text = text_of(exception_html(PE))
    assert "System.Collections.Generic.KeyNotFoundException" in text
    assert "The given key 'Größe: \"x\"' was not present in the dictionary." in text
    assert "HResult 0x80131577" in text
    assert "inner exception:" in text and "System.FormatException" in text and "0x1e41a2b3d80" in text
    assert "there are nested exceptions on this thread" in text
    markup = exception_html(PE)
    rows = row_htmls(markup)
    assert len(rows) == 2
    assert "pdg-throw-site" in rows[0].split(">")[0] and "pdg-framework" in rows[0].split(">")[0]
    assert "pdg-user" in rows[1].split(">")[0] and "ThrowingApp.Program.Main" in rows[1]


def test_exception_view_nests_nested_exceptions_and_keeps_multiline_messages() -> None:
    markup = exception_html(PE_NESTED)
    assert markup.count('class="pdg-nested"') == 1
    nested_part = markup.split('class="pdg-nested"', 1)[1]
    assert "System.ArgumentException" in nested_part and "HResult 0x80070057" in nested_part
    assert "(no message)" in nested_part and "(no stack trace)" in nested_part
    assert "there are nested exceptions" not in text_of(markup)  # the blocks are shown instead
    text = text_of(markup)
    assert 'first line: with a colon\nsecond line "quoted"' in text
    assert "D:\\src\\ThrowingApp\\Program.cs:42" in text and "HResult 0x80131509" in text
    deep = ManagedException(address=1, type="A", message="m", nested=(HOSTILE_EXC,))
    assert exception_html(deep).count('class="pdg-nested"') == 2
    check_html(exception_html(deep))


def test_hresult_is_eight_upper_hex_digits() -> None:
    exc = ManagedException(address=1, type="T", message=None, hresult=0x57)
    assert "HResult 0x00000057" in text_of(exception_html(exc))
    assert "`0x00000057`" in exception_markdown(exc)


def test_threads_view() -> None:
    markup = threads_html(THREADS)
    text = text_of(markup)
    assert "3 threads, 0 unstarted, 1 background, 0 pending, 1 dead; hosted runtime: no" in text
    with_exc = rows_with_class(markup, "pdg-has-exception")
    assert len(with_exc) == 1
    assert (
        "System.InvalidOperationException" in text
        and "0x20c1e0ef6a8" in text
        and "(nested exceptions)" in text
    )
    assert len(rows_with_class(markup, "pdg-dead")) == 1 and "XXXX" in text
    finalizer = [
        a for t, a in check_html(markup).tags if t == "span" and "pdg-finalizer" in (a["class"] or "")
    ]
    assert len(finalizer) == 1
    specials = [a for t, a in check_html(markup).tags if t == "span" and "pdg-special" in (a["class"] or "")]
    assert len(specials) == 2  # Finalizer and Threadpool Worker
    headers = re.findall(r"<th>([^<]*)</th>", markup)
    assert headers == ["DBG", "ID", "OSID", "ThreadOBJ", "State", "GC mode", "Apt", "special", "exception"]


def test_dump_view() -> None:
    text = text_of(dump_html(GOOD_DUMP))
    assert "/tmp/core.4242" in text and "2.0 MB (2000000 bytes)" in text and "\u2713 verified" in text
    assert "dotnet-dump analyze" in text and "0x4d20" in text
    bad = dump_html(HOSTILE_DUMP)
    assert 'class="pdg-bad"' in bad and "NOT verified: " + HOSTILE in text_of(bad)
    plain = DumpRecord(path="/d", size=1, seconds=0.0)
    assert "not verified" in text_of(dump_html(plain)) and "NOT" not in text_of(dump_html(plain))


# ---------------------------------------------------------------------------------------------
# capture records and watch results (test doubles)


def test_capture_html_reads_a_record_by_attribute_name() -> None:
    record = capture_record_double(
        event=event_for(MIXED_STACK),
        dump=GOOD_DUMP,
        decision=decision_double("dump", "type matched", {"n": 1}),
    )
    markup = capture_html(record)
    text = text_of(markup)
    assert "dump" in text and "type matched" in text and "(n=1)" in text
    assert "KeyNotFoundException" in text and "/tmp/core.4242" in text
    assert len([r for r in row_htmls(markup) if "pdg-throw-site" in r.split(">")[0]]) == 2
    # exception/stack given on the record without an event; nothing else needed
    bare = capture_record_double(exception=PE_NESTED, stack=CLRSTACK)
    assert "System.ArgumentException" in text_of(capture_html(bare))
    assert rows_with_class(capture_html(bare).split("<summary>stack</summary>")[1], "pdg-throw-site") == []
    assert "pdg-decision" not in capture_html(SimpleNamespace())


def test_watch_result_html_summarises_decisions_and_captures() -> None:
    first = capture_record_double(event=event_for(MIXED_STACK), decision=decision_double("dump", "first"))
    second = capture_record_double(
        event=event_for(CLRSTACK), dump=GOOD_DUMP, decision=decision_double("dump", "2nd")
    )
    result = watch_result_double(
        captures=[first, second],
        decisions=[decision_double("skip", "not matched"), decision_double("dump", "first")],
        events_seen=5,
    )
    markup = watch_result_html(result)
    text = text_of(markup)
    assert "5 events seen, 2 decisions, 2 captures" in text
    assert "not matched" in text and "capture 1" in text and "capture 2" in text
    assert markup.count("<details open><summary>capture") == 1
    seen_list = watch_result_double(captures=(), events_seen=[event_for(CLRSTACK)] * 3)
    assert "3 events seen, 0 captures" in text_of(watch_result_html(seen_list))
    md = watch_result_markdown(result)
    assert md.startswith("5 events seen, 2 decisions, 2 captures") and "**Capture 2**" in md


# ---------------------------------------------------------------------------------------------
# Markdown


def md_unescape(text: str) -> str:
    """Inverse of markdown_escape, written independently (what a CommonMark renderer shows)."""
    text = text.replace("<br>", "\n")
    text = re.sub(r"\\(.)", lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def test_markdown_escape_examples() -> None:
    assert markdown_escape("a|b") == "a\\|b"
    assert markdown_escape("`x`") == "\\`x\\`"
    assert markdown_escape("<script>") == "&lt;script&gt;"
    assert markdown_escape("*a* _b_ [c]") == "\\*a\\* \\_b\\_ \\[c\\]"
    assert markdown_escape("one\ntwo\r\nthree") == "one<br>two<br>three"
    assert markdown_escape("C:\\x") == "C:\\\\x"
    assert markdown_escape("&lt;") == "&amp;lt;"
    assert markdown_escape("Größe 中") == "Größe 中"


@given(st.text())
def test_markdown_escape_round_trips_and_stays_on_one_line(text: str) -> None:
    escaped = markdown_escape(text)
    assert "\n" not in escaped and "\r" not in escaped
    assert "<" not in escaped.replace("<br>", "")
    assert unescaped_pipes(escaped) == 0
    assert md_unescape(escaped) == text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("name,render,value", MD_VIEWS, ids=lambda x: x if isinstance(x, str) else "")
def test_markdown_views_escape_everything(name: str, render: Callable[[Any], str], value: Any) -> None:
    md = render(value)
    assert "<script" not in md.lower() and "<img" not in md.lower()
    assert "<" not in md.replace("<br>", "")  # no raw HTML from the model, only our line breaks
    assert md_unescape(HOSTILE_SHORT) == HOSTILE_SHORT
    assert markdown_escape(HOSTILE_SHORT) in md or markdown_escape(HOSTILE) in md
    # tables keep their shape: every row has as many unescaped pipes as its header
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            width = unescaped_pipes(lines[i - 1])
            j = i + 1
            while j < len(lines) and lines[j].startswith("| "):
                assert unescaped_pipes(lines[j]) == width, lines[j]
                j += 1


def test_markdown_stack_bold_user_frames_and_marks_throw_site() -> None:
    md = event_markdown(event_for(MIXED_STACK))
    assert "**ThrowingApp.Program.Throw(Int32)**" in md
    assert "**ThrowingApp.Program.Main(System.String\\[\\])**" in md
    assert "| System.Threading.Tasks.Task.Run() |" in md  # framework: not bold
    assert "**System." not in md.split("Stack:")[1]
    throw_rows = [line for line in md.splitlines() if line.startswith("| " + display.THROW_SITE_LABEL)]
    assert len(throw_rows) == 2  # pe's first frame, clrstack's throw site
    assert (
        "ThrowingApp.Program.Throw(Int32)" in throw_rows[1]
        and "/src/ThrowingApp/Program.cs:42" in throw_rows[1]
    )
    assert "- thrown in: ThrowingApp.Program.Throw(Int32)" in md


def test_markdown_exception_and_threads() -> None:
    md = exception_markdown(PE_NESTED)
    assert "**System.InvalidOperationException** at `0x1e41a2c` · HResult `0x80131509`" in md
    assert 'Message: first line: with a colon<br>second line "quoted"' in md
    assert "Nested exception (level 1):" in md and "**System.ArgumentException**" in md
    tmd = threads_markdown(THREADS)
    assert "| **Finalizer** |" in tmd and "| XXXX |" in tmd
    assert "**System.InvalidOperationException 0x20c1e0ef6a8 (nested exceptions)**" in tmd
    dmd = dump_markdown(HOSTILE_DUMP)
    assert dmd.count("\n- ") + 1 == len([ln for ln in dmd.splitlines() if ln.startswith("- ")])


# ---------------------------------------------------------------------------------------------
# property: any text anywhere keeps the HTML well-formed and comes back as text

_any_text = st.text(max_size=40)


@settings(max_examples=60, deadline=None)
@given(message=_any_text, type_name=_any_text, method=_any_text, path=_any_text)
def test_any_text_keeps_html_well_formed(message: str, type_name: str, method: str, path: str) -> None:
    frame = sframe(method, sp=0x40, source_file=path or None, line=3)
    stack = ManagedStack(os_thread_id=1, frames=(frame,), error=message or None)
    exc = ManagedException(
        address=2,
        type=type_name,
        message=message,
        frames=(ExceptionFrame(sp=1, ip=2, module=type_name, method=method, source_file=path or None),),
    )
    event = StopEvent(kind="first-chance", exception=exc, stack=stack, description=message)
    for markup in (exception_html(exc), stack_html(stack, frame), event_html(event)):
        text = text_of(markup)
        assert message.replace("\r\n", "\n").replace("\r", "\n") in text.replace("\r\n", "\n").replace(
            "\r", "\n"
        )
        assert method.replace("\r", "\n") in text.replace("\r", "\n")
    assert len(row_htmls(stack_html(stack, frame))) == 1


# ---------------------------------------------------------------------------------------------
# install_reprs


def test_install_reprs_attaches_methods_to_the_models() -> None:
    installed = install_reprs()
    for cls in (ManagedException, ManagedStack, ThreadTable, StopEvent, DumpRecord):
        assert cls in installed
    exc = ManagedException(address=0x10, type="System.Exception", message=HOSTILE)
    assert exc._repr_html_() == exception_html(exc)  # type: ignore[attr-defined]
    assert exc._repr_markdown_() == exception_markdown(exc)  # type: ignore[attr-defined]
    assert CLRSTACK._repr_html_() == stack_html(CLRSTACK)  # type: ignore[attr-defined]
    assert THREADS._repr_markdown_() == threads_markdown(THREADS)  # type: ignore[attr-defined]
    assert event_for(CLRSTACK)._repr_html_() == event_html(event_for(CLRSTACK))  # type: ignore[attr-defined]
    assert GOOD_DUMP._repr_markdown_() == dump_markdown(GOOD_DUMP)  # type: ignore[attr-defined]
    assert install_reprs() == installed  # again: harmless


def test_install_reprs_takes_the_pending_classes_explicitly() -> None:
    class CaptureRecordDouble:
        """Test double for the CaptureRecord class."""

        event = event_for(CLRSTACK)
        exception = stack = dump = None
        decision = decision_double("dump", "matched")

    class WatchResultDouble:
        """Test double for the WatchResult class."""

        captures = [CaptureRecordDouble()]
        decisions = [decision_double("dump", "matched")]
        events_seen = 1

    installed = install_reprs(capture_record=CaptureRecordDouble, watch_result=WatchResultDouble)
    assert CaptureRecordDouble in installed and WatchResultDouble in installed
    chtml = CaptureRecordDouble()._repr_html_()  # type: ignore[attr-defined]
    assert chtml == capture_html(CaptureRecordDouble())
    wmd = WatchResultDouble()._repr_markdown_()  # type: ignore[attr-defined]
    assert wmd == watch_result_markdown(WatchResultDouble())
    assert "1 events seen, 1 decisions, 1 captures" in wmd


def test_ipython_formatter_uses_the_reprs() -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    install_reprs()
    formatter = formatters.DisplayFormatter()
    formatter.active_types = ["text/plain", "text/html", "text/markdown"]
    data, _ = formatter.format(event_for(MIXED_STACK))
    assert data["text/html"] == event_html(event_for(MIXED_STACK))
    assert data["text/markdown"] == event_markdown(event_for(MIXED_STACK))
    assert data["text/plain"].startswith("StopEvent(")
