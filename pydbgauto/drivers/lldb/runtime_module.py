"""Which module of the target is the .NET runtime (runs inside lldb's Python).

Usually ``libcoreclr.so``. A single-file app (``PublishSingleFile``) has the runtime linked into its
executable: that module is the runtime then, known by the export the runtime makes for debuggers there
(pydbgauto/single_file.py). Everything the agent finds in the runtime's file (the QCall and FCall tables, the
throw funnel, the signal handlers, the code range) it finds there the same way.
"""

from __future__ import annotations

from typing import Optional

import lldb  # type: ignore[import-not-found]

RUNTIME_LIBRARY = "libcoreclr.so"
SINGLE_FILE_EXPORT = "DotNetRuntimeInfo"


def runtime_module(target: "lldb.SBTarget") -> Optional["lldb.SBModule"]:
    """The runtime's module, or None when the target has none (yet)."""
    if not target.IsValid():
        return None
    for module in target.module_iter():
        if module.GetFileSpec().GetFilename() == RUNTIME_LIBRARY:
            return module
    executable = target.GetModuleAtIndex(0)
    if executable.IsValid() and executable.FindSymbol(SINGLE_FILE_EXPORT).IsValid():
        return executable
    return None


def is_single_file(module: "lldb.SBModule") -> bool:
    return module.GetFileSpec().GetFilename() != RUNTIME_LIBRARY
