"""The job end to end: watch a process, decide with a predicate, write the right dumps, log every decision.

    import pydbgauto as pda
    when = pda.exception_type("System.InvalidOperationException") & pda.message_matches(r"timeout")
    result = pda.watch(pid=1234, when=when, dump_dir="dumps", max_dumps=3, timeout=3600)

Every stop gets one line in the decision log (JSON lines, mode 0600, written line by line as it goes):
what was seen, whether it matched, and if it matched but was not dumped, why. Every dump gets a capture
record (JSON, beside the dump). Everything a user passes is checked before a debugger starts.

SIGINT, SIGTERM and SIGHUP end a watch run in the main thread the same way: the wait is interrupted, the
debugger detaches (the target runs on), the summary goes to ``on_event("done")``, and
:class:`pydbgauto.Interrupted` (a ``KeyboardInterrupt``) is raised with the result.

The stages, one module each:

- ``one_process``: :func:`watch`, from the input to the result;
- ``checks``: the input, checked before any debugger starts (:func:`prepare`, disk room);
- ``loop``: one session's wait for events, to a limit (:class:`~pydbgauto.watching.loop.WatchLoop`);
- ``capture``: one stop: facts, predicate, decision, dump, capture record;
- ``decision_log``, ``records``: the private files a watch writes;
- ``signals``: SIGINT/SIGTERM/SIGHUP during a watch; ``result``: :class:`WatchResult`;
- ``shared_limit``: ``max_dumps`` across the loops of ``pydbgauto.watch_all``;
- ``watcher``: :class:`Watcher`, a watch on a background thread (the pytest fixture's).

The package is ``watching``, not ``watch``: a submodule named like the public function would replace the
function on the package (``pda.watch`` would become the module).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers; at run time they load on first use (below)
    from pydbgauto.watching.predicate_workers import evaluate_within
    from pydbgauto.watching.checks import check_disk_for, prepare
    from pydbgauto.watching.decision_log import LOG_NAME, open_private_log
    from pydbgauto.watching.one_process import watch
    from pydbgauto.watching.result import EventCallback, MultiWatchResult, WatchResult
    from pydbgauto.watching.signals import END_SIGNALS
    from pydbgauto.watching.watcher import Watcher

__all__ = [
    "END_SIGNALS",
    "EventCallback",
    "LOG_NAME",
    "MultiWatchResult",
    "WatchResult",
    "Watcher",
    "check_disk_for",
    "evaluate_within",
    "open_private_log",
    "prepare",
    "watch",
]

# Each name's module: importing the package (the pytest plugin does, at every pytest start) loads no
# session or driver until a name that needs one is used.
_WHERE = {
    "END_SIGNALS": "signals",
    "EventCallback": "result",
    "LOG_NAME": "decision_log",
    "MultiWatchResult": "result",
    "WatchResult": "result",
    "Watcher": "watcher",
    "check_disk_for": "checks",
    "evaluate_within": "predicate_workers",
    "open_private_log": "decision_log",
    "prepare": "checks",
    "watch": "one_process",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pydbgauto.watching' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"pydbgauto.watching.{module}"), name)
