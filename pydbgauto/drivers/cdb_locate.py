"""Find cdb.exe, the default symbol path and an SOS for .NET Core on Windows.

The search order is a pure function of the environment (:func:`cdb_candidates`), so it
is tested on any OS; :func:`find_cdb` only adds "does the file exist".

Where cdb.exe is looked for, in order:

1. the ``cdb_path`` the caller gave (a file, or a folder holding cdb.exe);
2. ``CDB_PATH`` (file or folder);
3. ``PATH`` (``cdb.exe``, and ``cdb`` for the replay test double on POSIX);
4. the Windows Kits: ``%ProgramFiles(x86)%`` and ``%ProgramFiles%`` ``\\Windows Kits\\10``
   (then ``8.1``) ``\\Debuggers\\{x64,x86,arm64}\\cdb.exe``, the architecture of this
   Python first;
5. the WinDbg Store app: the aliases in ``%LOCALAPPDATA%\\Microsoft\\WindowsApps``
   (``cdbX64.exe``, ``cdbX86.exe``, ``cdbARM64.exe``, ``cdb.exe``).
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
from typing import Callable, Mapping, Optional, Sequence

from pydbgauto.errors import DebuggerNotFoundError

__all__ = [
    "INSTALL_HINT",
    "MICROSOFT_SYMBOL_SERVER",
    "cdb_candidates",
    "default_symbol_path",
    "find_cdb",
    "find_coreclr_sos",
    "sos_candidates",
]

MICROSOFT_SYMBOL_SERVER = "https://msdl.microsoft.com/download/symbols"

INSTALL_HINT = (
    "Install the Debugging Tools for Windows: run the Windows SDK installer and tick only "
    "'Debugging Tools for Windows' "
    "(cdb.exe lands in C:\\Program Files (x86)\\Windows Kits\\10\\Debuggers\\x64), "
    "or install WinDbg with 'winget install Microsoft.WinDbg'; or set CDB_PATH to cdb.exe."
)


def _arch_dirs(machine: str) -> list[str]:
    machine = machine.lower()
    if machine in ("arm64", "aarch64"):
        return ["arm64", "x64", "x86"]
    if machine in ("x86", "i386", "i686"):
        return ["x86", "x64"]
    return ["x64", "x86", "arm64"]


def _store_aliases(machine: str) -> list[str]:
    first = {"arm64": "cdbARM64.exe", "aarch64": "cdbARM64.exe", "x86": "cdbX86.exe"}.get(
        machine.lower(), "cdbX64.exe"
    )
    names = [first] + [n for n in ("cdbX64.exe", "cdbX86.exe", "cdbARM64.exe", "cdb.exe") if n != first]
    return names


def _join(*parts: str) -> str:
    # Windows paths are built with backslashes whatever OS computes them.
    return "\\".join(p.rstrip("\\/") for p in parts)


def cdb_candidates(
    env: Mapping[str, str], *, explicit: Optional[str] = None, machine: Optional[str] = None
) -> list[str]:
    """Every path where cdb.exe may be, in search order (PATH is searched separately)."""
    machine = machine or platform.machine() or "AMD64"
    out: list[str] = []

    def add_file_or_dir(value: str) -> None:
        if value.lower().endswith(".exe") or os.path.basename(value).lower().startswith("cdb"):
            out.append(value)
        else:
            out.append(
                _join(value, "cdb.exe") if "\\" in value or ":" in value else os.path.join(value, "cdb.exe")
            )

    if explicit:
        add_file_or_dir(explicit)
    if env.get("CDB_PATH"):
        add_file_or_dir(env["CDB_PATH"])
    roots = []
    for var in ("ProgramFiles(x86)", "ProgramFiles", "ProgramW6432"):
        root = env.get(var)
        if root and root not in roots:
            roots.append(root)
    if not roots:
        roots = ["C:\\Program Files (x86)", "C:\\Program Files"]
    for kit in ("10", "8.1"):
        for root in roots:
            for arch in _arch_dirs(machine):
                out.append(_join(root, "Windows Kits", kit, "Debuggers", arch, "cdb.exe"))
    local = env.get("LOCALAPPDATA")
    if local:
        for alias in _store_aliases(machine):
            out.append(_join(local, "Microsoft", "WindowsApps", alias))
    return out


def find_cdb(
    explicit: Optional[str] = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    exists: Callable[[str], bool] = os.path.isfile,
    which: Callable[[str], Optional[str]] = shutil.which,
) -> str:
    """The path of cdb.exe; DebuggerNotFoundError (saying where we looked) if there is none."""
    env = os.environ if env is None else env
    candidates = cdb_candidates(env, explicit=explicit)
    looked: list[str] = []
    # An explicit path or CDB_PATH is taken at its word: it must exist.
    n_given = int(bool(explicit)) + int(bool(env.get("CDB_PATH")))
    for path in candidates[:n_given]:
        looked.append(path)
        if exists(path):
            return path
    if n_given:
        raise DebuggerNotFoundError(
            f"cdb.exe not found at {', '.join(looked)} (given by the caller or CDB_PATH). {INSTALL_HINT}"
        )
    for name in ("cdb.exe", "cdb"):
        found = which(name)
        if found:
            return found
    looked.append("PATH (cdb.exe)")
    for path in candidates[n_given:]:
        looked.append(path)
        if exists(path):
            return path
    raise DebuggerNotFoundError("cdb.exe not found; looked in: " + "; ".join(looked) + ". " + INSTALL_HINT)


def default_symbol_path(env: Optional[Mapping[str, str]] = None) -> str:
    """``_NT_SYMBOL_PATH`` if set, else a local cache plus Microsoft's symbol server."""
    env = os.environ if env is None else env
    if env.get("_NT_SYMBOL_PATH"):
        return env["_NT_SYMBOL_PATH"]
    base = env.get("LOCALAPPDATA") or env.get("TEMP") or env.get("TMP")
    cache = _join(base, "pydbgauto", "symbols") if base else "C:\\symbols"
    return f"srv*{cache}*{MICROSOFT_SYMBOL_SERVER}"


def sos_candidates(
    env: Mapping[str, str], *, arch: str = "x64", extra_roots: Sequence[str] = ()
) -> list[str]:
    """Glob patterns for a Windows sos.dll usable with coreclr, best first.

    ``dotnet-sos install`` puts it at ``%USERPROFILE%\\.dotnet\\sos\\sos.dll``; the
    ``dotnet-dump`` global tool carries one under
    ``.dotnet\\tools\\.store\\dotnet-dump\\<v>\\dotnet-dump\\<v>\\tools\\<tfm>\\any\\win-<arch>\\sos.dll``;
    ``extra_roots`` are tool folders installed with ``--tool-path``.
    """
    home = env.get("USERPROFILE") or env.get("HOME") or ""
    rid = {"x64": "win-x64", "amd64": "win-x64", "x86": "win-x86", "arm64": "win-arm64"}.get(
        arch.lower(), "win-x64"
    )
    patterns: list[str] = []
    if home:
        patterns.append(os.path.join(home, ".dotnet", "sos", "sos.dll"))
    roots = [os.path.join(home, ".dotnet", "tools")] if home else []
    roots.extend(extra_roots)
    for root in roots:
        patterns.append(
            os.path.join(
                root, ".store", "dotnet-dump", "*", "dotnet-dump", "*", "tools", "*", "any", rid, "sos.dll"
            )
        )
    return patterns


def find_coreclr_sos(
    explicit: Optional[str] = None,
    *,
    env: Optional[Mapping[str, str]] = None,
    arch: str = "x64",
    extra_roots: Sequence[str] = (),
) -> Optional[str]:
    """A sos.dll for .NET Core targets: ``explicit`` (must exist), else the dotnet-sos or
    dotnet-dump install (newest version first), else None (then ``.loadby sos coreclr``)."""
    env = os.environ if env is None else env
    if explicit:
        if not os.path.isfile(explicit):
            raise DebuggerNotFoundError(
                f"sos.dll not found at {explicit!r}. Install it with 'dotnet tool install -g dotnet-sos' "
                "and 'dotnet-sos install', or pass the path of a sos.dll from the dotnet-dump package."
            )
        return explicit
    for pattern in sos_candidates(env, arch=arch, extra_roots=extra_roots):
        hits = sorted(glob.glob(pattern), reverse=True)
        if hits:
            return hits[0]
    return None
