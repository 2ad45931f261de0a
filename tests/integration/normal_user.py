"""Run pydbgauto and the sample apps as a normal (non-root) user, the way a service account would.

As root (CI), that is the unprivileged account ``pydbgauto-test`` that ``scripts/setup`` creates; not root,
it is the current user. Either way the user gets a workspace of its own under /tmp (mode 0700, owned by it):
a copy of the pydbgauto package, of the sample apps and of dotnet-dump (in ``$HOME/.dotnet/tools``, where a
user's ``dotnet tool install`` puts it), so nothing of the checkout (which may sit under root's 0700 home)
has to be made readable. Python is Debian's /usr/bin/python3, lldb Debian's lldb-19.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Sequence

TEST_USER = "pydbgauto-test"
PYTHON = "/usr/bin/python3"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NormalUser:
    """A non-root user and its workspace; ``popen_kwargs`` switches to it when we are root."""

    def __init__(self, entry: pwd.struct_passwd, workspace: str) -> None:
        self.name = entry.pw_name
        self.uid = entry.pw_uid
        self.gid = entry.pw_gid
        self.switch = os.geteuid() != self.uid
        self.workspace = workspace
        self.home = os.path.join(workspace, "home")
        self.lib = os.path.join(workspace, "lib")

    def app(self, runtime: str, name: str = "ThrowingApp") -> str:
        return os.path.join(self.workspace, "apps", f"app-{runtime}", name)

    def env(self, **extra: str) -> Dict[str, str]:
        """A login-like environment: none of root's PATH (pyenv under /root), PYTHONPATH or HOME."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.lib,
            "PYTHONDONTWRITEBYTECODE": "1",
            "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
        }
        env.update(extra)
        return env

    def popen_kwargs(self, **extra_env: str) -> Dict[str, Any]:
        kwargs: Dict[str, Any] = {"env": self.env(**extra_env), "cwd": self.workspace}
        if self.switch:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return kwargs

    def mkdir(self, *parts: str, mode: int = 0o700) -> str:
        """A folder in the workspace owned by the user."""
        path = os.path.join(self.workspace, *parts)
        os.makedirs(path, exist_ok=True)
        self.chown(path)
        os.chmod(path, mode)
        return path

    def chown(self, path: str) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def chown_tree(self, top: str) -> None:
        if not self.switch:
            return
        self.chown(top)
        for folder, dirs, files in os.walk(top):
            for name in dirs + files:
                self.chown(os.path.join(folder, name))

    def pydbgauto(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """``python3 -m pydbgauto ARGS`` as the user, its output captured."""
        return subprocess.run(
            [PYTHON, "-m", "pydbgauto", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            **self.popen_kwargs(),
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(list(argv), **self.popen_kwargs(), **kwargs)


def find_user() -> Optional[pwd.struct_passwd]:
    """The user the normal-user tests run as: ourselves when not root, else ``pydbgauto-test`` (or None)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        return None


def make_user_workspace(entry: pwd.struct_passwd, runtimes: List[str]) -> NormalUser:
    """Copy what the user needs into a fresh 0700 folder under /tmp that it owns."""
    workspace = tempfile.mkdtemp(prefix="pydbgauto-user-", dir="/tmp")
    user = NormalUser(entry, workspace)
    shutil.copytree(
        os.path.join(ROOT, "pydbgauto"),
        os.path.join(user.lib, "pydbgauto"),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    tools = os.path.join(user.home, ".dotnet", "tools")
    shutil.copytree(os.path.join(ROOT, ".tools", "dotnet-dump"), tools, symlinks=True)
    for runtime in runtimes:
        shutil.copytree(
            os.path.join(ROOT, ".build", f"app-{runtime}"), os.path.join(workspace, "apps", f"app-{runtime}")
        )
    user.chown_tree(workspace)
    os.chmod(workspace, 0o700)
    return user


def remove_workspace(user: NormalUser) -> None:
    shutil.rmtree(user.workspace, ignore_errors=True)


def tracer_and_uid(pid: int) -> Dict[str, int]:
    """``TracerPid`` and the real uid of a process, from /proc/PID/status."""
    out: Dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                out["tracer"] = int(line.split()[1])
            elif line.startswith("Uid:"):
                out["uid"] = int(line.split()[1])
    return out
