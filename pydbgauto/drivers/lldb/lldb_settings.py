"""lldb settings the agent sets before it attaches or launches (also read by scripts/bench, to give a bare
lldb the same start-up)."""

# Separate debug files (libc6-dbg's DWARF, looked up by build id) are what lldb spends most of an attach on
# (0.30 -> 0.08 s here); pydbgauto needs symbol tables only (breakpoints by address or exported name, lldb's
# unwinder, SOS), which lldb still reads from the modules themselves. What is lost: names of libc's
# internal functions in native frames (lldb shows ___lldb_unnamed_symbol<N> there).
START_UP_SETTINGS = ("symbols.enable-external-lookup false",)
