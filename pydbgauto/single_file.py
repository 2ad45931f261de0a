"""Single-file .NET apps: the runtime linked into the executable, no ``libcoreclr.so`` to be found.

``dotnet publish -p:PublishSingleFile=true --self-contained`` links the runtime into the app's host. What a
debugger needs is then in the executable: the runtime's code and tables, and one export made for debuggers,
``DotNetRuntimeInfo`` (the runtime's ``runtimeinfo.h``: a signature, a version, the build ids of the
runtime, of its DAC and of its DBI, and from version 2 the runtime's own version). SOS needs the DAC
(``libmscordaccore.so``) of exactly that build, which a single-file app does not carry: it is found by its
build id among the runtimes and runtime packs on this machine.

Pure functions over files (ELF x86-64 little-endian), read by seeks: an executable is 70 MB and more.
"""

from __future__ import annotations

import glob
import os
import re
import struct
from typing import BinaryIO, Iterator, List, Optional, Tuple

import attr

EXPORT = b"DotNetRuntimeInfo"
DAC_NAME = "libmscordaccore.so"
SHT_DYNSYM, PT_LOAD, PT_NOTE, NT_GNU_BUILD_ID, NT_FILE = 11, 1, 4, 3, 0x46494C45


@attr.frozen
class RuntimeInfo:
    """What a single-file executable's ``DotNetRuntimeInfo`` says."""

    dac_build_id: bytes
    file_version: Optional[str]  # the runtime's file version, "10.0.1226"; None before the struct's version 2


def runtime_info(path: str) -> Optional[RuntimeInfo]:
    """The runtime's export of the executable at ``path``; None when it has none (not a single-file .NET
    app) or the file cannot be read as one."""
    try:
        with open(path, "rb") as f:
            address = _dynamic_symbol(f, EXPORT)
            offset = _file_offset(f, address) if address is not None else None
            if offset is None:
                return None
            f.seek(offset)
            data = f.read(112)
    except (OSError, struct.error, ValueError):
        return None
    if len(data) < 72 or data[: len(EXPORT) + 1] != EXPORT + b"\0":
        return None
    struct_version = struct.unpack_from("<i", data, 20)[0]
    dac = data[48 : 48 + 24]
    if struct_version <= 0 or not 0 < dac[0] <= 23:
        return None
    file_version = None
    if struct_version >= 2 and len(data) >= 112:
        major, minor, build, _revision = struct.unpack_from("<4i", data, 96)
        file_version = f"{major}.{minor}.{build}"
    return RuntimeInfo(dac_build_id=bytes(dac[1 : 1 + dac[0]]), file_version=file_version)


def build_id(path: str) -> Optional[bytes]:
    """The GNU build id of the ELF file at ``path``, or None."""
    try:
        with open(path, "rb") as f:
            for n_type, name, desc in _notes(f):
                if n_type == NT_GNU_BUILD_ID and name == b"GNU\0":
                    return desc
    except (OSError, struct.error, ValueError):
        return None
    return None


def dac_candidates() -> List[str]:
    """Folders that may hold a DAC: PYDBGAUTO_DAC_DIR alone when it is set (the user's choice), else the
    installed shared runtimes and NuGet's runtime packs."""
    if os.environ.get("PYDBGAUTO_DAC_DIR"):
        return [os.environ["PYDBGAUTO_DAC_DIR"]]
    found: List[str] = []
    roots = [os.environ.get("DOTNET_ROOT") or "", "/usr/share/dotnet", "/usr/lib/dotnet", "/opt/dotnet"]
    for root in roots:
        if root:
            found += sorted(glob.glob(os.path.join(root, "shared", "Microsoft.NETCore.App", "*")))
    nuget = os.environ.get("NUGET_PACKAGES") or os.path.expanduser("~/.nuget/packages")
    pattern = os.path.join(
        nuget, "microsoft.netcore.app.runtime.linux-x64", "*", "runtimes", "linux-x64", "native"
    )
    return found + sorted(glob.glob(pattern))


def find_dac_dir(info: RuntimeInfo, candidates: Optional[List[str]] = None) -> Optional[str]:
    """The folder whose ``libmscordaccore.so`` has the build id the executable names; None if none does."""
    for folder in dac_candidates() if candidates is None else candidates:
        dac = os.path.join(folder, DAC_NAME)
        if os.path.isfile(dac) and build_id(dac) == info.dac_build_id:
            return folder
    return None


def dac_dir_for_core(core: str) -> Optional[str]:
    """A core dump of a single-file app: the folder of its runtime's DAC (for a reader's ``setclrpath``);
    None for a dump with a libcoreclr.so (the reader finds the DAC beside it) or when none is found."""
    files = mapped_files(core)
    if any(os.path.basename(name) == "libcoreclr.so" for name in files):
        return None
    for name in dict.fromkeys(files):  # the executable is among the first
        info = runtime_info(name)
        if info is not None:
            return find_dac_dir(info)
    return None


def mapped_files(core: str) -> List[str]:
    """The files a core dump's NT_FILE note lists, in its order (empty if it has none)."""
    try:
        with open(core, "rb") as f:
            for n_type, _name, desc in _notes(f):
                if n_type == NT_FILE:  # count, page size, (start, end, offset) each, then the names
                    count = struct.unpack_from("<Q", desc, 0)[0]
                    names = desc[16 + 24 * count :].split(b"\0")
                    return [n.decode("utf-8", "replace") for n in names[:count]]
    except (OSError, struct.error, ValueError):
        return []
    return []


def product_version(dac_dir: str) -> Optional[str]:
    """The runtime version ("10.0.12") from its DAC's folder (a shared runtime's or a runtime pack's)."""
    m = re.search(r"/(\d+\.\d+\.\d+[^/]*?)(/runtimes/[^/]+/native)?/?$", dac_dir)
    return m.group(1) if m else None


def _program_headers(f: BinaryIO) -> Iterator[Tuple[int, int, int, int]]:
    """(type, file offset, vaddr, file size) of each program header."""
    header = _elf_header(f)
    phoff = struct.unpack_from("<Q", header, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", table, i * phentsize
        )
        yield p_type, p_offset, p_vaddr, p_filesz


def _notes(f: BinaryIO) -> Iterator[Tuple[int, bytes, bytes]]:
    """(type, name, descriptor) of each note of the file's PT_NOTE segments."""
    for p_type, p_offset, _vaddr, p_filesz in list(_program_headers(f)):
        if p_type != PT_NOTE:
            continue
        f.seek(p_offset)
        notes, at = f.read(p_filesz), 0
        while at + 12 <= len(notes):
            namesz, descsz, n_type = struct.unpack_from("<III", notes, at)
            desc = at + 12 + ((namesz + 3) & ~3)
            yield n_type, notes[at + 12 : at + 12 + namesz], notes[desc : desc + descsz]
            at = desc + ((descsz + 3) & ~3)


def _file_offset(f: BinaryIO, vaddr: int) -> Optional[int]:
    for p_type, p_offset, p_vaddr, p_filesz in _program_headers(f):
        if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return p_offset + vaddr - p_vaddr
    return None


def _dynamic_symbol(f: BinaryIO, name: bytes) -> Optional[int]:
    """The value (file address) of the dynamic symbol ``name``, from the section headers' .dynsym."""
    header = _elf_header(f)
    shoff = struct.unpack_from("<Q", header, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
    f.seek(shoff)
    sections = f.read(shentsize * shnum)
    for i in range(shnum):
        _n, sh_type, _fl, _a, sh_offset, sh_size, sh_link, _i, _al, sh_entsize = struct.unpack_from(
            "<IIQQQQIIQQ", sections, i * shentsize
        )
        if sh_type != SHT_DYNSYM or not sh_entsize or sh_link >= shnum:
            continue
        str_offset, str_size = struct.unpack_from("<QQ", sections, sh_link * shentsize + 24)
        f.seek(str_offset)
        strings = f.read(str_size)
        f.seek(sh_offset)
        symbols = f.read(sh_size)
        for at in range(0, len(symbols) - 23, sh_entsize):
            st_name = struct.unpack_from("<I", symbols, at)[0]
            if strings[st_name : st_name + len(name) + 1] == name + b"\0":
                return int(struct.unpack_from("<Q", symbols, at + 8)[0])
    return None


def _elf_header(f: BinaryIO) -> bytes:
    f.seek(0)
    header = f.read(64)
    if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        raise ValueError("not a little-endian 64-bit ELF file")
    return header
