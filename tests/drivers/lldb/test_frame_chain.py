"""frame_chain.pins: a chain stands for a clrstack text only where it holds every managed frame."""

from __future__ import annotations

from pydbgauto.drivers.lldb.frame_chain import pins

# .NET 8, stopped at __cxa_rethrow on the main thread (read from a real stop; see docs/linux.md)
TEXT = """OS Thread Id: 0x4118 (1)
        Child SP               IP Call Site
00007FFFFFFFD880 00007ffff7ca90e0 [HelperMethodFrame: 00007fffffffd880]
00007FFFFFFFD9A0 00007FFF78FF2DF2 ThrowingApp.Program.Storm(Int32, Double)
00007FFFFFFFDAC0 00007FFF78FF2220 ThrowingApp.Program.Main(System.String[])
"""
HEAD = (0x4118, 0x7FFFF7CA90E0, 0x7FFFFFFFD718, 0x7FFFF7402CF8)
LINKS = (0x7FFFF753C4C3, 0x7FFFFFFFD800, 0x7FFF78FF2DF2, 0x7FFFFFFFD9A0, 0x7FFF78FF2220, 0x7FFFFFFFDAC0)
CHAIN = HEAD + LINKS + (0x7FFFF769E437, 0x7FFFFFFFDCB0)


def test_a_chain_holding_every_managed_frame_pins_the_text() -> None:
    assert pins(CHAIN, TEXT)  # the explicit Frame's line needs no pair


def test_a_managed_frame_missing_from_the_chain_unpins_it() -> None:
    # Main's return address reached through a frame that keeps no frame pointer: not in the chain
    assert not pins(HEAD + LINKS[:4] + (0x7FFFF769E437, 0x7FFFFFFFDCB0), TEXT)


def test_the_same_ip_at_another_sp_does_not_pin() -> None:
    moved = HEAD + (LINKS[0], LINKS[1], LINKS[2], LINKS[3] + 0x10, LINKS[4], LINKS[5])
    assert not pins(moved, TEXT)


def test_a_text_without_managed_frames_is_never_pinned() -> None:
    assert not pins(CHAIN, "OS Thread Id: 0x4118 (1)\nFailed to start stack walk: 80004005\n")
    assert not pins(CHAIN, "")


# .NET 10, stopped in the filter stub called from DispatchEx's p/invoke: SOS shows DispatchEx at the call
# site its InlinedCallFrame names (...8BC9), [rsp] holds the real return address (...8BF4)
TEXT_10 = """OS Thread Id: 0x49e5 (1)
        Child SP               IP Call Site
00007FFFFFFF9D88 00007ffff7fbb18a [InlinedCallFrame: 00007fffffff9d88]
00007FFFFFFF9D40 00007FFF784D8BC9 System.Runtime.EH.DispatchEx(StackFrameIterator ByRef, ExInfo ByRef)
00007FFFFFFFCB80 00007ffff77fb3cc [SoftwareExceptionFrame: 00007fffffffcb80]
00007FFFFFFFD980 00007FFF792731F8 ThrowingApp.Program.Storm(Int32, Double)
"""
CHAIN_10 = (0x49E5, 0x7FFFF7FBB18A, 0x7FFFFFFF9D38, 0x7FFF784D8BF4, 0x7FFFF77FB3CC, 0x7FFFFFFF9E70) + (
    0x7FFF792731F8,
    0x7FFFFFFFD980,
)


def test_the_frame_rsp_returns_to_is_pinned_by_rsp() -> None:
    assert pins(CHAIN_10, TEXT_10)
    stopped_elsewhere = (0x49E5, 0x7FFFF7FBB18A, 0x7FFFFFFF9D30) + CHAIN_10[3:]
    assert not pins(stopped_elsewhere, TEXT_10)
