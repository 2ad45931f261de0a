"""The in-target type filter, inside lldb: patch the throw funnel, learn non-matching types, unpatch.

The stub's code and the decisions are in ``filter_stub.py``; why and what was measured:
docs/linux-fast-filter.md. The agent owns the policy (which stops become events); this module owns the
target's memory: three pages it allocates (code ``r-x``; data and the question's page, verdict_ask.py,
``rw-``; never writable and executable at once), the funnel's displaced bytes, and the stub's trap (a
tgkill of SIGURG: a signal stop at ``trap_pc``).
"""

from __future__ import annotations

import re
import struct
from typing import Any, Dict, List, Optional, Tuple

import lldb  # type: ignore[import-not-found]

from pydbgauto.drivers.lldb import filter_stub, message_prefilter, verdict_ask
from pydbgauto.drivers.lldb.filter_stub import (
    CAPACITY,
    DATA_CAPACITY,
    DATA_COUNT,
    DATA_ENTRIES,
    DATA_PASSED,
    DATA_SEEN,
    PAGE,
    PF_CLAUSES,
    PF_MESSAGE_AT,
    PF_PASSED,
    PF_TABLE,
    SAVED,
)


class FilterUnavailable(Exception):
    """The funnel cannot be patched here (the reason says why); the agent keeps its breakpoint."""


class InlineFilter:
    def __init__(
        self,
        entry: int,
        stub: filter_stub.Stub,
        code_page: int,
        data_page: int,
        original: bytes,
        object_in_handle: bool,
        ask_page: int,
    ) -> None:
        self.entry = entry
        self.stub = stub
        self.code_page = code_page
        self.data_page = data_page
        self.ask_page = ask_page  # the question's (verdict_ask.py): off until ask_on
        self.original = original
        self.patched = filter_stub.entry_patch(code_page, stub.length)
        self.trap_pc = code_page + stub.stop  # where a thread that took the trap stops
        self.object_in_handle = object_in_handle
        self.cached: List[int] = []
        self.clauses: Tuple[message_prefilter.Clause, ...] = ()  # the prefilter's, written in the target

    # ----- in and out --------------------------------------------------------------------------------

    @classmethod
    def install(
        cls, agent: Any, function: "lldb.SBAddress", object_in_handle: bool, first_frame_test: bool
    ) -> "InlineFilter":
        """Patch the function at ``function`` (the target is stopped). Raises FilterUnavailable."""
        target, process = agent.target, agent._require_process()
        entry = function.GetLoadAddress(target)
        instructions: List[Tuple[bytes, bool, str]] = []
        for instruction in target.ReadInstructions(function, 8):
            address = instruction.GetAddress().GetLoadAddress(target)
            raw = agent._read(address, instruction.GetByteSize())  # lldb shows original bytes
            instructions.append((raw, instruction.DoesBranch(), instruction.GetOperands(target) or ""))
        displaced = filter_stub.choose_displaced(instructions)
        if displaced is None:
            raise FilterUnavailable(f"the first instructions at {entry:#x} cannot be moved (a branch or rip)")
        length = sum(len(d) for d in displaced)
        for thread in process:
            pc = thread.GetFrameAtIndex(0).GetPC()
            if entry < pc < entry + length:
                raise FilterUnavailable(f"thread {thread.GetThreadID()} is inside the bytes to patch")
        pages: List[int] = []
        try:
            for permissions in ("rx", "rw", "rw"):
                pages.append(cls._allocate(permissions, agent))
            code_page, data_page, ask_page = pages
            pid = process.GetProcessID()
            stub = filter_stub.build(
                entry, displaced, data_page, object_in_handle, first_frame_test, pid, ask_page
            )
            cls._write(agent, data_page, struct.pack("<QQQ", 0, CAPACITY, 0))
            cls._write(agent, ask_page, verdict_ask.page(0, 0, pid))
            cls._write(agent, code_page, stub.code)
            made = cls(entry, stub, code_page, data_page, b"".join(displaced), object_in_handle, ask_page)
            cls._write(agent, entry, made.patched)
        except BaseException:
            for page in pages:
                agent.target_syscall(f"_m{page:x}")
            raise
        return made

    @staticmethod
    def _allocate(permissions: str, agent: Any) -> int:
        # lldb-server runs mmap on its current thread (agent.target_syscall picks one with no signal
        # pending); a reply that is no page address (the syscall number, 0x9, when the call did not
        # run) is tried again.
        reply = ""
        for _ in range(3):
            reply = agent.target_syscall(f"_M{PAGE:x},{permissions}")
            address = int(reply, 16) if re.fullmatch(r"[0-9a-fA-F]+", reply) else 0
            if address >= 0x10000 and not address % PAGE:
                return address
        raise FilterUnavailable(
            f"lldb-server could not allocate a page in the target ({reply or 'no reply'})"
        )

    @staticmethod
    def _write(agent: Any, address: int, data: bytes) -> None:
        error = lldb.SBError()
        written = agent._require_process().WriteMemory(address, data, error)
        if written != len(data) or agent._read(address, len(data)) != data:
            raise FilterUnavailable(f"cannot write {len(data)} bytes at {address:#x}: {error.GetCString()}")

    def remove(self, agent: Any) -> Dict[str, Any]:
        """Unpatch (the target is stopped): the original bytes back, every thread in the stub moved to the
        same point of the original code (one stopped at the trap starts the function again), the pages
        freed. A thread in the middle of a question (it may be inside a system call, which the kernel
        restarts at the pc it had: docs/linux-fast-filter.md) is left where it is, and then the pages stay
        mapped: it finds no one to answer, takes the trap (ignored with no tracer) and runs out through
        the stub's copy of the displaced instructions."""
        process = agent._require_process()
        self._write(agent, self.entry, self.original)
        moved, asking = {}, []
        for thread in process:
            frame = thread.GetFrameAtIndex(0)
            pc = frame.GetPC()
            if self.stub.holds_lock(pc - self.code_page):
                asking.append(str(thread.GetThreadID()))
            elif self.code_page <= pc < self.code_page + len(self.stub.code):
                names = ("rip", "rsp") + tuple(register for register, _ in SAVED)
                now = {name: frame.FindRegister(name).GetValueAsUnsigned() for name in names}
                unpatched = self.as_unpatched(agent, now)
                for register, _ in SAVED:
                    if unpatched[register] != now[register]:
                        self._set_register(frame, register, unpatched[register])
                frame.SetPC(unpatched["rip"])
                moved[str(thread.GetThreadID())] = f"{pc:#x}->{unpatched['rip']:#x}"
        pages = (self.code_page, self.data_page, self.ask_page)
        if asking:
            self._write(agent, self.ask_page, struct.pack("<Q", 0))  # off: the question is not asked again
            return {
                "moved": moved,
                "freed": False,
                "kept_for": asking,
                "still_mapped": [f"{p:#x}" for p in pages],
            }
        replies = [agent.target_syscall(f"_m{page:x}") for page in pages]
        mapped = _mapped(process.GetProcessID(), pages)
        return {"moved": moved, "freed": replies == ["OK"] * 3 and not mapped, "still_mapped": mapped}

    # ----- the question (verdict_ask.py) ---------------------------------------------------------------

    def ask_on(
        self, agent: Any, name: str, message_at: int, hresult_at: int, runtime: Tuple[int, int] = (0, 0)
    ) -> None:
        """Ask ``name`` from now on: the fields, the pid, the runtime's code range and the address, then
        ON. The lock, this question's socket and the counters are left alone (a thread stopped in the
        middle of a question holds the lock and its socket)."""
        pid = agent._require_process().GetProcessID()
        page = verdict_ask.page(message_at, hresult_at, pid, name, runtime)
        for start, end in (
            (verdict_ask.MESSAGE_AT, verdict_ask.VERDICT),
            (verdict_ask.PID, verdict_ask.FD),
            (verdict_ask.ADDR_LEN, verdict_ask.RECORD),
        ):
            self._write(agent, self.ask_page + start, page[start:end])
        self._write(agent, self.ask_page + verdict_ask.ON, page[verdict_ask.ON : verdict_ask.ON + 8])

    def ask_off(self, agent: Any) -> None:
        self._write(agent, self.ask_page + verdict_ask.ON, struct.pack("<Q", 0))

    def ask_stats(self, agent: Any) -> Dict[str, int]:
        on, _, asked, passed = struct.unpack("<4Q", agent._read(self.ask_page, 32))
        return {"on": on, "asked": asked, "passed": passed}

    def as_unpatched(self, agent: Any, registers: Dict[str, int]) -> Dict[str, int]:
        """A thread's registers (by name; at least rip and rsp) as they would be in the unpatched
        function: one in the stub goes to the same point of the original code (``Stub.original_pc``;
        the trap and the filter part start the function again) with the registers the prefilter borrowed
        back from the red zone below rsp (rsp never moved). Used to unpatch, and for the dump (whose code
        has the original bytes). Anything else is returned as it is."""
        offset = registers.get("rip", 0) - self.code_page
        if not 0 <= offset < len(self.stub.code):
            return registers
        fixed = dict(registers)
        if self.stub.restores(offset):
            for register, slot in SAVED:
                fixed[register] = int(agent._u64(registers["rsp"] - slot))
        fixed["rip"] = self.entry + self.stub.original_pc(offset)
        return fixed

    @staticmethod
    def _set_register(frame: "lldb.SBFrame", register: str, value: int) -> None:
        if not frame.FindRegister(register).SetValueFromCString(str(value)):
            raise FilterUnavailable(f"cannot give {register} back to a thread in the stub")

    def journal_record(self) -> Tuple[int, bytes, bytes]:
        """(entry, original bytes, patched bytes): what the guardian must put back should lldb die."""
        return (self.entry, self.original, self.patched)

    # ----- at a trap ---------------------------------------------------------------------------------

    def argument(self, agent: Any, frame: "lldb.SBFrame", register: str) -> int:
        """The function's argument ``register`` (one of SAVED) as the funnel was called with it: at the
        trap it is in its red-zone slot (the trap's system calls use the registers)."""
        if frame.GetPC() == self.trap_pc:
            slot = dict(SAVED)[register]
            return int(agent._u64(frame.GetSP() - slot))
        return int(frame.FindRegister(register).GetValueAsUnsigned())

    def exception_object(self, agent: Any, thread: "lldb.SBThread") -> Optional[int]:
        try:
            rdi = self.argument(agent, thread.GetFrameAtIndex(0), "rdi")
            return int(agent._u64(rdi)) if self.object_in_handle else int(rdi)
        except Exception:
            return None

    def remember_not_matching(self, agent: Any, method_table: int) -> bool:
        """Add a MethodTable the filter has ruled out by its type alone; False when the cache is full."""
        if method_table in self.cached:
            return True
        if len(self.cached) >= CAPACITY:
            return False
        slot = 8 * len(self.cached)
        self._write(agent, self.data_page + DATA_PASSED + slot, struct.pack("<Q", 0))
        self._write(agent, self.data_page + DATA_ENTRIES + slot, struct.pack("<Q", method_table))
        self.cached.append(method_table)
        self._write(agent, self.data_page + DATA_COUNT, struct.pack("<Q", len(self.cached)))  # entry first
        return True

    def forget(self, agent: Any) -> None:
        """A new predicate: no type is known not to match it, no prefilter."""
        self._write(agent, self.data_page + DATA_COUNT, struct.pack("<Q", 0))
        self.cached = []
        self.set_prefilter(agent, 0, 0, ())

    def set_prefilter(
        self, agent: Any, message_at: int, hresult_at: int, clauses: Tuple[message_prefilter.Clause, ...]
    ) -> None:
        """Write the message/HResult clauses (message_prefilter.py; the target is stopped): off first, then
        the table and the fields' offsets, then the count that turns it on. Raises ValueError when the
        clauses do not fit (it stays off)."""
        self._write(agent, self.data_page + PF_CLAUSES, struct.pack("<Q", 0))
        self.clauses = ()
        if not clauses:
            return
        made = message_prefilter.table(clauses)
        self._write(agent, self.data_page + PF_TABLE, made)
        self._write(agent, self.data_page + PF_MESSAGE_AT, struct.pack("<QQQ", message_at, hresult_at, 0))
        self._write(agent, self.data_page + PF_CLAUSES, struct.pack("<Q", len(clauses)))
        self.clauses = tuple(clauses)

    def passed(self, agent: Any) -> Dict[int, int]:
        """MethodTable -> throws of that type the stub let through without a stop."""
        if not self.cached:
            return {}
        data = agent._read(self.data_page + DATA_PASSED, 8 * len(self.cached))
        return dict(zip(self.cached, struct.unpack(f"<{len(self.cached)}Q", data)))

    def stats(self, agent: Any) -> Dict[str, Any]:
        try:
            seen = int(agent._u64(self.data_page + DATA_SEEN))
            capacity = int(agent._u64(self.data_page + DATA_CAPACITY))
        except Exception:
            seen, capacity = -1, CAPACITY
        return {
            "entry": f"{self.entry:#x}",
            "stub": f"{self.code_page:#x}",
            "trap": f"{self.trap_pc:#x}",  # where a thread stops at the stub's trap
            "data": f"{self.data_page:#x}",
            "cached_types": len(self.cached),
            "capacity": capacity,
            "seen": seen,  # every throw that reached the stub, stopped or not
            "prefilter": self._prefilter_stats(agent),
            "question": self._ask_stats(agent),
        }

    def _ask_stats(self, agent: Any) -> Dict[str, int]:
        try:
            return self.ask_stats(agent)
        except Exception:
            return {}

    def _prefilter_stats(self, agent: Any) -> Dict[str, Any]:
        if not self.clauses:
            return {"clauses": 0}
        try:
            passed = int(agent._u64(self.data_page + PF_PASSED))
        except Exception:
            passed = -1
        literals = [c.literal for c in self.clauses if c.literal]
        codes = [f"{c.hresult:#x}" for c in self.clauses if c.hresult is not None]
        # throws let through because they held no clause (never stopped for, never logged)
        return {"clauses": len(self.clauses), "literals": literals, "hresults": codes, "passed": passed}


def _mapped(pid: int, pages: Tuple[int, ...]) -> List[str]:
    """Which of ``pages`` the target still maps (lldb-server's ``_m`` says OK even when its munmap did
    not run), from /proc/PID/maps."""
    found = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                start, end = (int(x, 16) for x in line.split(" ", 1)[0].split("-"))
                found += [f"{page:#x}" for page in pages if start <= page < end]
    except OSError:
        return []
    return found
