"""Where a throw was thrown, without the stack: the return addresses at the funnel's entry, as a key to
the throw site ``clrstack`` showed at an earlier stop (pure: runs inside lldb's Python and in tests).

Why: a ``thrown_in`` predicate reads only the throw site (``StopEvent.throw_site``), yet it stopped the
target at every throw for ``clrstack``. The stub's question (verdict_ask.py) now also sends the
frame-pointer chain from the .NET 8 funnel's entry: ``[rsp]`` (into its caller in libcoreclr), then
``[rbp+8]`` of each frame up while the last address was in libcoreclr. libcoreclr and JIT-ed code keep
rbp frames on x64 Linux (frame_chain.py), so the first address out of libcoreclr is where the managed
thrower called into the runtime.

The key is the whole chain up to and including that first address: the same runtime path entered from
the same call site in the same code. It is learnt only at a stop where ``clrstack``'s throw site has
exactly that address as its IP (the return address SOS shows for the frame), so a chain that skipped a
frame (a runtime frame without rbp) never becomes a key, and such throws stop as before. Code at an
address is not replaced while the runtime runs, except collectible code (a collectible assembly's or a
DynamicMethod's, freed and its memory reused): a key then names the method that was there first.

At a stop (either runtime, wherever it stops) the same walk, read by lldb, keys the throw site too: the
stop's pc and the chain up to the throw site's IP, learnt where a ``clrstack`` showed that IP in the
chain. A ``thrown_in`` stop whose chain starts with a learnt key is decided without ``clrstack``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Optional, Set, Tuple

from pydbgauto.drivers.lldb.verdict_ask import FRAME_REACH, SITES

if TYPE_CHECKING:  # the models (attrs) are imported when first used: not at the agent's start-up
    from pydbgauto.models import ManagedStack, StackFrame

Key = Tuple[int, ...]
Range = Tuple[int, int]  # [lo, hi): libcoreclr's mapped range
MAX_KEYS = 4096  # distinct throw paths remembered; a service has far fewer (warm: one per site and tier)
STOP_FRAMES = 24  # return addresses read at a stop: .NET 10's thrower is ~6 frames above its funnel


def walk(
    word: Callable[[int], int], sp: int, rbp: int, runtime: Optional[Range], limit: int = SITES
) -> Tuple[int, ...]:
    """The stub's walk (verdict_ask._return_addresses) from a thread at the funnel's entry or in the stub
    (rsp and rbp as at the entry): ``word`` reads 8 bytes of the target. ``runtime`` None: on through
    every frame, up to ``limit`` (a stop's walk, whose start is the stub's while in the runtime)."""
    lo, hi = runtime or (0, 1 << 64)
    found = [word(sp)]
    frame, last = rbp, sp
    while lo <= found[-1] < hi and len(found) < limit:
        if not (last < frame and frame - sp < FRAME_REACH and frame % 8 == 0):
            break
        last = frame
        found.append(word(frame + 8))
        frame = word(frame)
    return tuple(found)


def key(addresses: Tuple[int, ...], runtime: Range) -> Optional[Key]:
    """The question's chain as a key, up to the first address out of the runtime within SITES (the
    stub's own; a stop's longer walk starts the same): None when there is none."""
    lo, hi = runtime
    for i, address in enumerate(addresses[:SITES]):
        if not lo <= address < hi:
            return addresses[: i + 1]
    return None


class ThrowSites:
    """Keys learnt at stops, each to the throw site's frame ``clrstack`` printed there."""

    def __init__(self) -> None:
        self.frames: Dict[Key, "StackFrame"] = {}
        self.refused = 0  # stops whose throw site was not in the chain where it must be
        self.at_stops: Dict[Key, "StackFrame"] = {}  # (pc, return addresses to the site's) -> the site
        self.lengths: Set[int] = set()  # of those keys

    def learn(self, chain: Optional[Key], stack: Optional["ManagedStack"]) -> bool:
        """Remember ``chain`` for the throw site of ``stack`` (both of the same stop) when they agree."""
        if chain is None or chain in self.frames or len(self.frames) >= MAX_KEYS:
            return False
        site = self._site(stack, chain[-1:])
        if site is not None:
            self.frames[chain] = site
        return site is not None

    def stack(self, chain: Optional[Key], thread_id: Optional[int]) -> Optional["ManagedStack"]:
        """A stack of the one frame ``thrown_in`` reads, for a known chain; None: not known."""
        return _alone(self.frames.get(chain) if chain is not None else None, thread_id)

    def learn_at_stop(self, pc: int, chain: Tuple[int, ...], stack: Optional["ManagedStack"]) -> bool:
        """Remember (pc, the chain up to the throw site's IP) when the site's IP is in the chain."""
        if len(self.at_stops) >= MAX_KEYS:
            return False
        site = self._site(stack, chain)
        if site is None:
            return False
        at = (pc,) + chain[: chain.index(site.ip) + 1]
        self.at_stops.setdefault(at, site)
        self.lengths.add(len(at))
        return True

    def stack_at_stop(
        self, pc: int, chain: Tuple[int, ...], thread_id: Optional[int]
    ) -> Optional["ManagedStack"]:
        """The throw site of a stop whose chain starts with a learnt key (the shortest); None: not known."""
        for length in sorted(self.lengths):
            frame = self.at_stops.get((pc,) + chain[: length - 1])
            if frame is not None:
                return _alone(frame, thread_id)
        return None

    def _site(self, stack: Optional["ManagedStack"], among: Tuple[int, ...]) -> Optional["StackFrame"]:
        """The throw site of ``stack`` when its IP is one of ``among`` (else counted as refused)."""
        from pydbgauto.models import StopEvent

        site = StopEvent(kind="first-chance", stack=stack).throw_site if stack is not None else None
        if site is None or site.ip not in among:
            self.refused += 1
            return None
        return site


def _alone(frame: Optional["StackFrame"], thread_id: Optional[int]) -> Optional["ManagedStack"]:
    from pydbgauto.models import ManagedStack

    return None if frame is None else ManagedStack(os_thread_id=thread_id, frames=(frame,))
