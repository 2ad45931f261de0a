"""lldb's embedded Python: which interpreter it is, and the environment and sys.path that make it run
pydbgauto's agent (lldb's Python must find pydbgauto and attrs, and must not load another Python's files).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from typing import Dict, List, Mapping, Optional, Tuple

from pydbgauto.errors import ConfigurationError

# The folder that holds the pydbgauto package (this file is pydbgauto/drivers/lldb/embedded_python.py).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# Variables that would point lldb's embedded Python at another interpreter's files; lldb runs without
# them and a launched target gets them back.
FOREIGN_PYTHON_VARIABLES = ("PYTHONHOME", "PYTHONPATH")
LLDB_PYTHON_HINT = (
    "lldb's embedded Python must import attrs: install it for the Python lldb was built for "
    "(Debian: apt-get install python3-attr), or set PYDBGAUTO_LLDB_PYTHON to that interpreter "
    "(e.g. /usr/bin/python3.11); `pydbgauto doctor` checks this"
)


@functools.lru_cache(maxsize=8)
def lldb_python_dir(lldb_path: str) -> Optional[str]:
    """Where lldb's own Python module lives (``lldb -P``): /usr/lib/llvm-19/lib/python3.11/site-packages."""
    try:
        done = subprocess.run(
            [lldb_path, "-P"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip() if done.returncode == 0 and lines else None


def lldb_python_version(lldb_path: str) -> Optional[str]:
    """The ``X.Y`` of the Python lldb was built for, read from its module folder."""
    folder = lldb_python_dir(lldb_path) or ""
    m = re.search(r"python(\d+\.\d+)", folder)
    return m.group(1) if m else None


def find_lldb_python(lldb_path: str) -> Optional[str]:
    """The interpreter lldb's embedded Python belongs to: PYDBGAUTO_LLDB_PYTHON, else pythonX.Y of the
    system (lldb's libpython comes from the distribution: Debian's /usr/bin/python3.11)."""
    explicit = os.environ.get("PYDBGAUTO_LLDB_PYTHON")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise ConfigurationError(
                f"PYDBGAUTO_LLDB_PYTHON={explicit} is not an executable: point it at the Python lldb was "
                f"built for (`{lldb_path} -P` names its folder), or unset it"
            )
        return explicit
    version = lldb_python_version(lldb_path)
    if version is None:
        return None
    for folder in ("/usr/bin", "/bin", "/usr/local/bin"):
        candidate = os.path.join(folder, f"python{version}")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def lldb_environment(
    lldb_path: str, base: Mapping[str, str], private_dir: Optional[str]
) -> Tuple[Dict[str, str], Optional[str]]:
    """lldb's environment, such that its embedded Python is the one lldb was built for.

    lldb's Python finds its prefix (and so its site-packages) from the first ``python3`` on PATH: from a
    venv, pyenv or conda shell that is another interpreter, whose packages lldb's Python cannot see (or
    must not load). With ``private_dir`` (a new empty folder), a ``python3`` link to lldb's interpreter
    is made there and put first on PATH. PYTHONHOME and PYTHONPATH are left out. Returns the
    environment and the interpreter (None when it was not found: the environment is then the base one,
    less those two variables).
    """
    env = {k: v for k, v in base.items() if k not in FOREIGN_PYTHON_VARIABLES}
    python = find_lldb_python(lldb_path)
    if python is None or private_dir is None:
        return env, python
    os.symlink(python, os.path.join(private_dir, "python3"))
    env["PATH"] = private_dir + os.pathsep + base.get("PATH", os.defpath)
    return env, python


def target_environment(extra: Mapping[str, str]) -> Dict[str, str]:
    """What a launched target gets on top of lldb's environment: ``extra``, and the PATH, PYTHONHOME and
    PYTHONPATH of the caller that lldb's own environment changed (see ``lldb_environment``)."""
    env = dict(extra)
    for key in ("PATH",) + FOREIGN_PYTHON_VARIABLES:
        if key not in env and key in os.environ:
            env[key] = os.environ[key]
    return env


def agent_path_line() -> str:
    """An lldb command that puts pydbgauto's parent first on the embedded Python's sys.path, and the
    folder that holds attrs for the Python running pydbgauto last (attrs is pure Python: a fallback
    for an lldb Python without its own)."""
    last: List[str] = []
    try:
        import attr

        last.append(os.path.dirname(os.path.dirname(os.path.abspath(attr.__file__))))
    except ImportError:  # pragma: no cover - pydbgauto itself needs attrs
        pass
    return (
        "script import sys; "
        f"sys.path[:0] = [p for p in {[PACKAGE_PARENT]!r} if p not in sys.path]; "
        f"sys.path.extend(p for p in {last!r} if p not in sys.path)"
    )
