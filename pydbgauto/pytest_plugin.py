"""pytest plugin: watch a .NET process while a test drives it, then assert on what was caught.

    import pydbgauto as pda

    def test_checkout_never_throws_ioe(dotnet_watch):
        ioe = pda.exception_type("System.InvalidOperationException")
        with dotnet_watch([app, "first-chance"], when=ioe) as w:
            ...                                  # drive the app
        assert w.captures == []                  # a failure report shows each exception, stack and dump

The watch is a :class:`pydbgauto.watching.Watcher`: ``pydbgauto.watching.watch`` running on a thread for
the length of the ``with`` block. Leaving the block waits for a launched program to finish
(``exit_timeout``; past it the program is killed and the test fails), or, for ``pid=``, stops watching,
detaches and leaves the target running. This module is the pytest side: the fixture, the failure report,
the marker and the options.

Options: ``--pydbgauto-dump-dir`` (default: the test's ``tmp_path``), ``--pydbgauto-debugger``.
Marker: ``@pytest.mark.needs_debugger`` skips a test when no debugger (or SOS) is available.
The plugin is registered as the ``pytest11`` entry point ``pydbgauto`` (or load it with
``-p pydbgauto.pytest_plugin``).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Generator, Iterator, List, Optional, Sequence

import pytest

from pydbgauto.errors import DebuggerNotFoundError
from pydbgauto.models import hex_text as _hex
from pydbgauto.watching.watcher import CaptureList, Watcher, capture_line

__all__ = ["CaptureList", "Watcher", "debugger_unavailable", "describe_captures"]

# ----- the failure report ------------------------------------------------------------------------------


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def describe_captures(watchers: Sequence[Watcher]) -> str:
    """Plain text for a failure report: each capture's exception, managed stack and dump; then matches
    that were not dumped."""
    parts: List[str] = []
    for watcher in watchers:
        target = " ".join(watcher.argv) if watcher.argv else f"pid {watcher.pid}"
        captures, matched = watcher.captures, watcher.matched
        dumped = {c.event.sequence for c in captures}
        head = f"watch of {target}: {len(captures)} capture(s), {len(matched)} matching exception(s)"
        if watcher.result is not None:
            head += f"; ended: {watcher.result.ended}; decision log: {watcher.result.log_path}"
        parts.append(head)
        for capture in captures:
            parts.append(capture_line(capture))
            event = capture.event
            parts.append(f"  {event.kind} on thread {_hex(event.thread_id)}; decision: {capture.decision}")
            if capture.exception is not None:
                parts.append("  exception:")
                parts.append(_indent(str(capture.exception)))
            stack = capture.stack or event.stack
            if stack is not None:
                parts.append("  managed stack:")
                parts.append(_indent(str(stack)))
            if event.error:
                parts.append(f"  (SOS: {event.error})")
            if capture.dump is not None:
                parts.append(f"  dump: {capture.dump}")
            else:
                parts.append(f"  dump: none ({capture.dump_error})")
            if capture.record_path:
                parts.append(f"  record: {capture.record_path}")
        for event in matched:
            if event.sequence not in dumped:
                reasons = [d for e, d in watcher.decisions if e.sequence == event.sequence]
                why = str(reasons[0]) if reasons else ""
                parts.append(f"matched, not dumped: {str(event).splitlines()[0]} [{why}]")
    return "\n".join(parts)


# ----- availability ------------------------------------------------------------------------------------


def debugger_unavailable(debugger: Optional[str] = None) -> Optional[str]:
    """Why ``debugger`` (default: this platform's) cannot run here, or None when it can."""
    from pydbgauto.drivers.choose import default_debugger

    name = debugger or default_debugger()
    try:
        if name == "lldb":
            from pydbgauto import locate

            locate.find_lldb()
            locate.find_sos_plugin()
        elif name in ("cdb", "pykd"):
            if sys.platform != "win32":
                return f"{name} runs only on Windows"
            if name == "cdb":
                from pydbgauto.drivers.cdb_locate import find_cdb

                find_cdb()
            else:
                import importlib

                importlib.import_module("pykd")
        else:
            return f"unknown debugger {name!r}"
    except (DebuggerNotFoundError, ImportError) as e:
        return str(e)
    return None


# ----- hooks and the fixture ---------------------------------------------------------------------------

_WATCHERS = pytest.StashKey[List[Watcher]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pydbgauto", "pydbgauto: watch .NET processes for exceptions")
    group.addoption(
        "--pydbgauto-dump-dir",
        dest="pydbgauto_dump_dir",
        default=None,
        metavar="DIR",
        help="where dotnet_watch writes dumps (a folder per test); default: the test's tmp_path",
    )
    group.addoption(
        "--pydbgauto-debugger",
        dest="pydbgauto_debugger",
        default=None,
        choices=("lldb", "cdb", "pykd"),
        help="the debugger dotnet_watch drives (default: lldb on " "Linux, cdb on Windows)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_debugger: skip the test when no debugger with SOS is available "
        "(pydbgauto's dotnet_watch needs one)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_debugger") is not None:
        why = debugger_unavailable(item.config.getoption("pydbgauto_debugger", None))
        if why is not None:
            pytest.skip(f"no debugger: {why}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    watchers: List[Watcher] = item.stash.get(_WATCHERS, [])
    if not watchers or report.when == "setup":
        return
    if report.when == "call":
        for watcher in watchers:
            for capture in watcher.captures:
                if capture.dump is not None:
                    item.user_properties.append(("pydbgauto_dump", capture.dump.path))
    if report.failed:
        text = describe_captures(watchers)
        if text:
            report.sections.append(("pydbgauto captures", text))


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> Optional[List[str]]:
    """``assert w.captures == []`` explains itself in one line per capture, not in attrs reprs."""
    if op != "==" or not (isinstance(left, CaptureList) or isinstance(right, CaptureList)):
        return None

    def short(value: Any) -> str:
        return f"<{len(value)} capture(s)>" if isinstance(value, CaptureList) else repr(value)

    lines = [f"{short(left)} == {short(right)}"]
    for side, value in (("left", left), ("right", right)):
        if isinstance(value, CaptureList):
            lines.append(f"{side}: {len(value)} capture(s)")
            lines += ["  " + capture_line(c) for c in value]
    lines.append("(the 'pydbgauto captures' section of the report shows each exception, stack and dump)")
    return lines


def _test_folder(base: str, nodeid: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("._")[:120] or "test"
    return os.path.join(base, name)


@pytest.fixture
def dotnet_watch(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """A factory: ``with dotnet_watch([app, "arg"], when=...) as w:`` or ``dotnet_watch(pid=..., when=...)``.

    Takes the options of ``Watcher`` (and through it of ``pydbgauto.watching.watch``); the dump folder and
    debugger default to the ``--pydbgauto-*`` options. Watchers still running at the end of the test are
    stopped.
    """
    config = request.config
    base = config.getoption("pydbgauto_dump_dir", None)
    debugger = config.getoption("pydbgauto_debugger", None)
    watchers: List[Watcher] = request.node.stash.setdefault(_WATCHERS, [])

    def make(
        argv: Optional[Sequence[str]] = None, *, pid: Optional[int] = None, when: Any = None, **options: Any
    ) -> Watcher:
        if "dump_dir" not in options:
            if base:
                folder = _test_folder(os.path.abspath(base), request.node.nodeid)
                os.makedirs(folder, exist_ok=True)
            else:
                folder = str(tmp_path)
            options["dump_dir"] = folder
        options.setdefault("debugger", debugger)
        watcher = Watcher(argv, pid=pid, when=when, **options)
        watchers.append(watcher)
        return watcher

    yield make
    for watcher in watchers:
        if watcher.running:
            watcher.abandon()
