"""What ``analyze`` asks of a reader: the thread list and every managed stack, then each thread's exception.

One subclass per reader (``dotnet_dump``, ``lldb``, ``cdb``); :func:`pydbgauto.readers.pick` chooses one.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from pydbgauto.readers.run import remaining, run_reader

__all__ = ["Exceptions", "ListedThreads", "Reader"]

ListedThreads = Sequence[Any]  # ManagedThread rows with an exception
Exceptions = Tuple[Dict[int, str], Optional[str], str]  # pe text per OS thread id, pe <address> text, raw


class Reader:
    """A dump reader for ``analyze``. Deadlines are ``time.monotonic()`` values (None: no limit)."""

    name = ""

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        """(clrthreads text, clrstack -all text, raw output); DumpVerificationError when unreadable."""
        raise NotImplementedError

    def exceptions(
        self, path: str, listed: ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> Exceptions:
        """The ``pe -nested`` text of each listed thread's exception, and of the object at ``address``."""
        raise NotImplementedError

    def warnings(self, raw: str) -> List[str]:
        """The reader's own warnings in its output."""
        return []

    def run(
        self, argv: List[str], path: str, deadline: Optional[float], env: Optional[Dict[str, str]] = None
    ) -> Tuple[int, str, str]:
        done = run_reader(argv, self.name, path, remaining(deadline, path, self.name), env)
        return done.returncode, done.stdout, done.stderr
