"""lldb + SOS on the core (``lldb --batch --core <dump>``) as ``analyze``'s reader, where dotnet-dump is
not installed. The echoed ``(lldb) <command>`` lines cut the replies apart; threads are selected with
``thread select <DBG>``."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from pydbgauto import locate
from pydbgauto.errors import DumpVerificationError
from pydbgauto.readers.base import Exceptions, ListedThreads, Reader
from pydbgauto.readers.run import tail
from pydbgauto.sos import reader_output

__all__ = ["READER", "LldbReader"]

READER = "lldb + SOS"


class LldbReader(Reader):
    name = READER

    def __init__(self) -> None:
        self.lldb = locate.find_lldb()
        self.sos = locate.find_sos_plugin()

    def argv(self, path: str, commands: Sequence[str]) -> List[str]:
        argv = [self.lldb, "--no-lldbinit", "--no-use-colors", "--batch", "--core", path]
        argv += ["-o", f"plugin load {self.sos}"]
        for command in commands:
            argv += ["-o", command]
        return argv

    def _batch(self, path: str, commands: Sequence[str], deadline: Optional[float]) -> Tuple[List[str], str]:
        rc, out, err = self.run(self.argv(path, commands), path, deadline)
        text = out + (("\n" + err) if err.strip() else "")
        if not reader_output.lldb_loaded_sos(text):
            raise DumpVerificationError(f"{self.name} could not read {path} (exit {rc}): {tail(text)}")
        return reader_output.lldb_replies(out, len(commands)), text

    def overview(self, path: str, deadline: Optional[float]) -> Tuple[str, str, str]:
        (threads, stacks), text = self._batch(path, ["clrthreads", "clrstack -all"], deadline)
        return threads, stacks, text

    def exceptions(
        self, path: str, listed: ListedThreads, address: Optional[int], deadline: Optional[float]
    ) -> Exceptions:
        live = [t for t in listed if t.dbg_id is not None]
        dead = [t for t in listed if t.dbg_id is None]
        commands: List[str] = []
        for t in live:
            commands += [f"thread select {t.dbg_id}", "pe -nested"]
        for t in dead:
            commands.append(f"pe -nested {t.exception_address:x}")
        if address:
            commands.append(f"pe -nested {address:x}")
        replies, text = self._batch(path, commands, deadline)
        per_thread: Dict[int, str] = {}
        for i, t in enumerate(live):
            if replies[2 * i + 1].strip() and "error:" not in replies[2 * i]:
                per_thread[t.os_id] = replies[2 * i + 1]
        for i, t in enumerate(dead):
            if replies[2 * len(live) + i].strip():
                per_thread[t.os_id] = replies[2 * len(live) + i]
        address_text = replies[-1] if address and replies[-1].strip() else None
        return per_thread, address_text, text

    def warnings(self, raw: str) -> List[str]:
        return list(reader_output.warning_lines(raw, ("warning:", "WARNING:"), indented=False))
