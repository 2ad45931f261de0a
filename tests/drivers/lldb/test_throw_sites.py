"""throw_sites.py (pure): the walk the stub makes, the key, and what a stop may teach."""

from __future__ import annotations

from typing import Dict

from pydbgauto.drivers.lldb import throw_sites as ts
from pydbgauto.drivers.lldb.verdict_ask import FRAME_REACH, SITES
from pydbgauto.models import ManagedStack, StackFrame

RUNTIME = (0x7000_0000, 0x7100_0000)  # "libcoreclr"
SP = 0x10_0000


def memory(words: Dict[int, int]):  # type: ignore[no-untyped-def]
    return lambda address: words[address]


def test_the_walk_follows_frames_while_in_the_runtime_and_ends_at_the_first_address_out_of_it() -> None:
    words = {
        SP: 0x7000_1000,  # [rsp]: into the runtime (IL_Throw)
        SP + 0x40: SP + 0x100,  # its frame: the caller's rbp ...
        SP + 0x48: 0x5000_0042,  # ... and its return address, into the thrower
    }
    assert ts.walk(memory(words), SP, SP + 0x40, RUNTIME) == (0x7000_1000, 0x5000_0042)
    assert ts.key((0x7000_1000, 0x5000_0042), RUNTIME) == (0x7000_1000, 0x5000_0042)


def test_the_walk_never_follows_a_frame_pointer_down_far_or_unaligned() -> None:
    into_runtime = {SP: 0x7000_1000}
    for rbp in (SP - 8, SP, SP + FRAME_REACH, SP + 0x41):
        chain = ts.walk(memory(into_runtime), SP, rbp, RUNTIME)  # reading rbp would be a KeyError
        assert chain == (0x7000_1000,) and ts.key(chain, RUNTIME) is None  # still in the runtime: no key


def test_a_chain_that_stays_in_the_runtime_is_cut_at_sites_and_has_no_key() -> None:
    words = {SP: 0x7000_0000}
    for i in range(SITES):
        frame = SP + 0x100 * (i + 1)
        words[frame], words[frame + 8] = frame + 0x100, 0x7000_0000 + i
    chain = ts.walk(memory(words), SP, SP + 0x100, RUNTIME)
    assert len(chain) == SITES and ts.key(chain, RUNTIME) is None
    assert ts.key((), RUNTIME) is None


def frame(ip: int, method: str) -> StackFrame:
    return StackFrame(sp=SP + 0x200, ip=ip, call_site=method, method=method)


def test_a_stop_teaches_its_chain_only_when_its_throw_site_is_the_chains_last_address() -> None:
    sites = ts.ThrowSites()
    chain = (0x7000_1000, 0x5000_0042)
    dispatch = frame(0x5000_0001, "System.Runtime.EH.DispatchEx()")
    good = ManagedStack(os_thread_id=7, frames=(dispatch, frame(0x5000_0042, "App.Orders.Submit()")))
    skipped = ManagedStack(os_thread_id=7, frames=(frame(0x5000_0099, "App.Orders.Validate()"),))
    assert not sites.learn(chain, skipped) and sites.refused == 1  # a frame the chain skipped
    assert sites.stack(chain, 7) is None
    assert sites.learn(chain, good)
    known = sites.stack(chain, 9)
    assert known is not None and known.os_thread_id == 9
    assert [f.method for f in known.frames] == ["App.Orders.Submit()"]
    assert not sites.learn(None, good) and not sites.learn(chain, None)


def test_what_is_remembered_is_bounded() -> None:
    sites = ts.ThrowSites()
    for i in range(ts.MAX_KEYS + 5):
        sites.learn(
            (0x7000_1000, 0x5000_0000 + i),
            ManagedStack(os_thread_id=1, frames=(frame(0x5000_0000 + i, "M()"),)),
        )
    assert len(sites.frames) == ts.MAX_KEYS


def test_a_stop_keys_its_pc_and_the_chain_up_to_the_throw_sites_ip() -> None:
    sites = ts.ThrowSites()
    site = ManagedStack(os_thread_id=7, frames=(frame(0x5000_0042, "App.Orders.Submit()"),))
    chain = (0x5000_0001, 0x7000_1000, 0x5000_0042, 0x5000_0900)
    assert (
        not sites.learn_at_stop(0x1111, chain[:2], site) and sites.refused == 1
    )  # the site's IP is not there
    assert sites.learn_at_stop(0x1111, chain, site)
    known = sites.stack_at_stop(0x1111, chain[:3] + (0x5000_0777,), 9)  # the same up to the site: known
    assert known is not None and known.frames[0].method == "App.Orders.Submit()" and known.os_thread_id == 9
    assert sites.stack_at_stop(0x2222, chain, 9) is None  # another stop place
    assert sites.stack_at_stop(0x1111, (0x5000_0001, 0x7000_1001, 0x5000_0042), 9) is None
