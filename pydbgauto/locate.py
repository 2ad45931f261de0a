"""Find the tools pydbgauto drives on Linux: lldb, the SOS plugin, dotnet-dump.

Each finder takes an explicit path first, then an environment variable, then the usual places, and
raises DebuggerNotFoundError saying where it looked and the command that installs the tool.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import List, Optional

from pydbgauto.errors import DebuggerNotFoundError

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLDB_NAMES = ("lldb-19", "lldb-22", "lldb-18", "lldb")
DOTNET_DUMP_VERSION = "10.0.750501"
INSTALL_HINT = "run scripts/setup, or: apt-get install lldb-19 python3-lldb-19 liblldb-19-dev"
SOS_HINT = (
    "install the dotnet-dump tool (it carries libsosplugin.so): "
    f"dotnet tool install dotnet-dump --version {DOTNET_DUMP_VERSION} --tool-path ~/.dotnet/tools, "
    "or set PYDBGAUTO_SOS_PLUGIN to the path of libsosplugin.so"
)


def tool_dirs() -> List[str]:
    """Folders where dotnet tools may be installed: the project's own, then the user's."""
    dirs = [
        os.environ.get("PYDBGAUTO_TOOLS", ""),
        os.path.join(_PROJECT_ROOT, ".tools", "dotnet-dump"),
        os.path.expanduser("~/.dotnet/tools"),
    ]
    return [d for d in dirs if d]


def find_lldb(explicit: Optional[str] = None) -> str:
    candidates: List[Optional[str]] = (
        [explicit] if explicit else [os.environ.get("PYDBGAUTO_LLDB"), *LLDB_NAMES]
    )
    for name in candidates:
        if not name:
            continue
        path = shutil.which(name) if os.sep not in name else (name if os.access(name, os.X_OK) else None)
        if path:
            return path
    raise DebuggerNotFoundError(
        f"lldb was not found (looked for {', '.join(c for c in candidates if c)}): {INSTALL_HINT}"
    )


def find_sos_plugin(explicit: Optional[str] = None) -> str:
    if explicit:
        if os.path.isfile(explicit):
            return explicit
        raise DebuggerNotFoundError(f"the SOS plugin {explicit} does not exist: {SOS_HINT}")
    env = os.environ.get("PYDBGAUTO_SOS_PLUGIN")
    if env:
        if os.path.isfile(env):
            return env
        raise DebuggerNotFoundError(f"PYDBGAUTO_SOS_PLUGIN={env} does not exist: {SOS_HINT}")
    looked = []
    for base in tool_dirs():
        pattern = os.path.join(
            base,
            ".store",
            "dotnet-dump",
            "*",
            "dotnet-dump",
            "*",
            "tools",
            "*",
            "any",
            "linux-x64",
            "libsosplugin.so",
        )
        looked.append(pattern)
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    sos_install = os.path.expanduser("~/.dotnet/sos/libsosplugin.so")
    looked.append(sos_install)
    if os.path.isfile(sos_install):
        return sos_install
    raise DebuggerNotFoundError(
        f"the SOS plugin libsosplugin.so was not found (looked in {'; '.join(looked)}): {SOS_HINT}"
    )


def find_dotnet_dump(explicit: Optional[str] = None) -> str:
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit
        raise DebuggerNotFoundError(f"dotnet-dump at {explicit} is not an executable: {SOS_HINT}")
    env = os.environ.get("PYDBGAUTO_DOTNET_DUMP")
    candidates = [env] if env else []
    candidates += [os.path.join(d, "dotnet-dump") for d in tool_dirs()]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    on_path = shutil.which("dotnet-dump")
    if on_path:
        return on_path
    raise DebuggerNotFoundError(
        f"dotnet-dump was not found (looked at {', '.join(c for c in candidates if c)} and PATH): {SOS_HINT}"
    )
