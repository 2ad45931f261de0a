"""``pydbgauto doctor``: is this machine ready to catch .NET exceptions and write dumps?

Each check says what it found and, when something is wrong, the command that fixes it::

    for check in run_checks(sample_app=".build/app-net10/ThrowingApp"):
        print(check)

Checks (Linux, debugger "lldb"): lldb and its version, lldb's Python (the in-lldb agent needs it), the SOS
plugin (found, and loaded by lldb), dotnet-dump and its version, ptrace permission (Yama's ptrace_scope,
root or CAP_SYS_PTRACE, containers), free disk in the dump folder, and - with a sample app - a real attach:
the app is started in ``wait`` mode, a Session attaches, ``clrthreads`` must list its main thread, the
Session detaches and the app is ended. On Windows (debugger "cdb") cdb.exe, its SOS and the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import attr

from pydbgauto import locate
from pydbgauto.errors import DebuggerNotFoundError, PydbgautoError

__all__ = ["Check", "run_checks", "register"]

MIN_FREE_DISK = 1 << 30  # a full dump of a small .NET app is 100-300 MB; big services need GBs
CAP_SYS_PTRACE = 19
TOOL_TIMEOUT = 60.0


@attr.frozen
class Check:
    """One finding: ``ok``; what was found (``detail``); the command that fixes it (``fix``, when not ok)."""

    name: str
    ok: bool
    detail: str
    fix: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return attr.asdict(self)

    def __str__(self) -> str:
        text = f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix else "")


def run_checks(
    *, sample_app: Optional[str] = None, debugger: str = "lldb", dump_dir: str = ".", timeout: float = 120.0
) -> List[Check]:
    """Run every check for ``debugger`` ("lldb" or "cdb"); ``sample_app``: a .NET program with a ``wait``
    mode (the sample ThrowingApp) to attach to for real."""
    if debugger == "cdb":
        return [_cdb(), _disk(dump_dir)] + ([_attach(sample_app, debugger, timeout)] if sample_app else [])
    if debugger != "lldb":
        return [Check("debugger", False, f"unknown debugger {debugger!r}", "use --debugger lldb or cdb")]
    checks = [_lldb(), _lldb_python(), _sos(), _dotnet_dump(), _ptrace(), _disk(dump_dir)]
    if sample_app:
        ready = all(c.ok for c in checks[:3])
        checks.append(
            _attach(sample_app, debugger, timeout)
            if ready
            else Check(
                "attach", False, "not tried: lldb, its Python or SOS is missing", "fix the checks above"
            )
        )
    else:
        checks.append(
            Check("attach", True, "not tried (give --sample-app PATH to attach to a real .NET app)")
        )
    return checks


# ----- the checks -------------------------------------------------------------------------------------


def _run(argv: List[str], env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TOOL_TIMEOUT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _lldb() -> Check:
    try:
        path = locate.find_lldb()
    except DebuggerNotFoundError as e:
        return Check("lldb", False, str(e), "apt-get install lldb-19 python3-lldb-19 liblldb-19-dev")
    try:
        version = _run([path, "--version"]).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError) as e:
        return Check("lldb", False, f"{path} does not run: {e}", "apt-get install --reinstall lldb-19")
    return Check("lldb", True, f"{version} ({path})")


def _lldb_python() -> Check:
    """lldb's embedded Python must run pydbgauto's agent, which imports attrs like the rest of pydbgauto."""
    try:
        path = locate.find_lldb()
    except DebuggerNotFoundError:
        return Check("lldb python", False, "lldb is missing", "apt-get install lldb-19 python3-lldb-19")
    from pydbgauto.drivers.lldb.embedded_python import agent_path_line, lldb_environment
    from pydbgauto.errors import ConfigurationError

    probe = (
        "script import sys; print('pydbgauto-' + 'python', sys.version.split()[0], sys.prefix); "
        "import attr; print('pydbgauto-' + 'attrs-ok')"
    )
    # The same environment and sys.path the driver gives lldb (drivers/lldb/embedded_python.py).
    private = tempfile.mkdtemp(prefix="pydbgauto-doctor-")
    try:
        env, _ = lldb_environment(path, os.environ, private)
        done = _run([path, "--no-lldbinit", "--batch", "-o", agent_path_line(), "-o", probe], env=env)
    except ConfigurationError as e:
        return Check("lldb python", False, str(e), "unset PYDBGAUTO_LLDB_PYTHON or fix its path")
    except (OSError, subprocess.SubprocessError) as e:
        return Check("lldb python", False, f"{path} does not run: {e}", "apt-get install python3-lldb-19")
    finally:
        shutil.rmtree(private, ignore_errors=True)
    text = done.stdout + done.stderr
    line = next((x for x in done.stdout.splitlines() if x.startswith("pydbgauto-python ")), "")
    if not line:
        return Check(
            "lldb python",
            False,
            f"lldb cannot run Python scripts: {text.strip()[-200:]}",
            "apt-get install python3-lldb-19",
        )
    _, version, prefix = (line.split(" ", 2) + ["", ""])[:3]
    if "pydbgauto-attrs-ok" not in done.stdout:
        return Check(
            "lldb python",
            False,
            f"lldb's Python {version} (prefix {prefix}) cannot import attrs, so pydbgauto's in-lldb agent "
            "cannot load",
            "apt-get install python3-attr (attrs for the Python lldb was built for), or set "
            "PYDBGAUTO_LLDB_PYTHON to that interpreter",
        )
    return Check("lldb python", True, f"lldb's Python {version} ({prefix}) imports attrs: the agent can load")


def _sos() -> Check:
    env = os.environ.get("PYDBGAUTO_SOS_PLUGIN")
    try:
        plugin = locate.find_sos_plugin()
    except DebuggerNotFoundError as e:
        fix = locate.SOS_HINT
        if env:
            fix = f"unset PYDBGAUTO_SOS_PLUGIN (or point it at a libsosplugin.so); or {fix}"
        else:
            fix = f"scripts/setup, or {fix}"
        return Check("sos", False, str(e), fix)
    try:
        done = _run(
            [locate.find_lldb(), "--no-lldbinit", "--batch", "-o", f"plugin load {plugin}", "-o", "soshelp"]
        )
    except DebuggerNotFoundError:
        return Check("sos", True, f"{plugin} (not loaded: lldb is missing)")
    except (OSError, subprocess.SubprocessError) as e:
        return Check("sos", False, f"lldb could not load {plugin}: {e}", locate.SOS_HINT)
    text = done.stdout + done.stderr
    if "error:" in text and "plugin load" in text.split("error:")[0][-400:]:
        return Check("sos", False, f"lldb could not load {plugin}: {text.strip()[-300:]}", locate.SOS_HINT)
    return Check("sos", True, f"{plugin} (loads in lldb)")


def _dotnet_dump() -> Check:
    from pydbgauto.readers.run import reader_env

    try:
        tool = locate.find_dotnet_dump()
    except DebuggerNotFoundError as e:
        return Check("dotnet-dump", False, str(e), f"scripts/setup, or {locate.SOS_HINT}")
    try:
        done = _run([tool, "--version"], env=reader_env())
    except (OSError, subprocess.SubprocessError) as e:
        return Check("dotnet-dump", False, f"{tool} does not run: {e}", locate.SOS_HINT)
    version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    if done.returncode != 0 or not version:
        return Check(
            "dotnet-dump",
            False,
            f"{tool} --version failed: {(done.stdout + done.stderr).strip()[-300:]}",
            "install a .NET runtime 8 or newer (dotnet-dump runs on it), or " + locate.SOS_HINT,
        )
    return Check("dotnet-dump", True, f"{version.split('+')[0]} ({tool})")


def _cap_eff() -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def _in_container() -> Optional[str]:
    if os.path.exists("/.dockerenv"):
        return "docker"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    try:
        with open("/proc/1/cgroup") as f:
            text = f.read()
    except OSError:
        return None
    for name in ("kubepods", "docker", "containerd", "lxc"):
        if name in text:
            return name
    return None


def _ptrace() -> Check:
    """May this user attach to a process it did not start? (Launching under the debugger always works.)"""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    caps = _cap_eff()
    cap = caps is not None and bool(caps >> CAP_SYS_PTRACE & 1)
    who = "root" if root else "not root"
    who += ", CAP_SYS_PTRACE" if cap else ", no CAP_SYS_PTRACE"
    container = _in_container()
    if container:
        who += f"; in a {container} container"
    container_fix = (
        " (in a container: run it with --cap-add=SYS_PTRACE --security-opt seccomp=unconfined)"
        if container
        else ""
    )
    scope_path = "/proc/sys/kernel/yama/ptrace_scope"
    try:
        with open(scope_path) as f:
            scope: Optional[int] = int(f.read().strip())
    except (OSError, ValueError):
        scope = None
    if scope is None:
        if cap or root:
            return Check("ptrace", True, f"{scope_path} is absent (no Yama restriction); {who}")
        return Check(
            "ptrace",
            True,
            f"{scope_path} is absent (no Yama restriction); {who}: attaching works for your own processes",
        )
    if scope == 0:
        return Check("ptrace", True, f"ptrace_scope 0 (attach to any process of yours); {who}")
    if scope == 1 and cap:
        return Check("ptrace", True, f"ptrace_scope 1, and CAP_SYS_PTRACE lifts it; {who}")
    if scope == 1:
        return Check(
            "ptrace",
            False,
            f"ptrace_scope 1: only a parent may attach (launching works, --pid/--name does not); {who}",
            "sudo sysctl kernel.yama.ptrace_scope=0, or run pydbgauto as root / with CAP_SYS_PTRACE"
            + container_fix,
        )
    if scope == 2 and cap:
        return Check("ptrace", True, f"ptrace_scope 2 (admin only), and CAP_SYS_PTRACE is held; {who}")
    if scope == 2:
        return Check(
            "ptrace",
            False,
            f"ptrace_scope 2: only CAP_SYS_PTRACE may attach; {who}",
            "sudo sysctl kernel.yama.ptrace_scope=0, or run as root / with CAP_SYS_PTRACE" + container_fix,
        )
    return Check(
        "ptrace",
        False,
        f"ptrace_scope {scope}: no process may attach, not even root (until reboot); {who}",
        "reboot, then sudo sysctl kernel.yama.ptrace_scope=0 before anything sets it to 3",
    )


def _disk(dump_dir: str) -> Check:
    folder = os.path.abspath(dump_dir)
    if not os.path.isdir(folder):
        return Check("disk", False, f"the dump folder {folder} does not exist", f"mkdir -p {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check("disk", False, f"the dump folder {folder} is not writable", "choose another --dump-dir")
    free = shutil.disk_usage(folder).free
    text = f"{free / (1 << 30):.1f} GiB free in {folder}"
    if free < MIN_FREE_DISK:
        return Check(
            "disk",
            False,
            text + f" (under {MIN_FREE_DISK >> 30} GiB: a full dump may not fit)",
            "free some space, or choose another --dump-dir",
        )
    return Check("disk", True, text)


def _cdb() -> Check:
    from pydbgauto.drivers.cdb_locate import INSTALL_HINT, find_cdb, find_coreclr_sos

    try:
        cdb = find_cdb()
    except DebuggerNotFoundError as e:
        return Check("cdb", False, str(e), INSTALL_HINT)
    sos = find_coreclr_sos()
    return Check("cdb", True, f"{cdb}; SOS: {sos or '.loadby sos coreclr (from the target)'}")


def _attach(app: str, debugger: str, timeout: float) -> Check:
    """Start ``app wait``, attach, run clrthreads, detach, end the app."""
    from pydbgauto.session import Session

    if not os.access(app, os.X_OK):
        return Check(
            "attach", False, f"the sample app {app} is not an executable", "scripts/setup (builds it)"
        )
    started = time.monotonic()
    proc = subprocess.Popen([app, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        while line and not line.startswith("READY"):
            line = proc.stdout.readline()
        if not line:
            return Check(
                "attach", False, f"{app} wait exited ({proc.wait()}) before it was ready", "scripts/setup"
            )
        try:
            with Session.attach(pid=proc.pid, debugger=debugger, command_timeout=timeout) as session:
                table = session.threads()
                versions = dict(session.versions)
        except PydbgautoError as e:
            fix = (
                "sudo sysctl kernel.yama.ptrace_scope=0, or run as root"
                if "ptrace" in str(e).lower()
                else None
            )
            return Check(
                "attach", False, f"attaching to {app} (pid {proc.pid}) failed: {e}", fix or "scripts/setup"
            )
        if proc.poll() is not None:
            return Check("attach", False, f"{app} ended while attached (status {proc.returncode})", None)
        mains = [t for t in table.threads if t.os_id == proc.pid]
        if not mains:
            return Check(
                "attach",
                False,
                f"SOS answered clrthreads without the main thread {proc.pid:#x}",
                "check that the SOS plugin matches the runtime (scripts/setup)",
            )
        proc.stdin.write("exit\n")
        proc.stdin.flush()
        status = proc.wait(timeout=30)
        runtime = versions.get("runtime") or "?"
        return Check(
            "attach",
            status == 0,
            f"attached to {os.path.basename(app)} (pid {proc.pid}, .NET {runtime}); clrthreads listed "
            f"{len(table.threads)} managed threads; detached; the app then exited with status {status} "
            f"({time.monotonic() - started:.1f} s)",
            None if status == 0 else "the app did not exit cleanly after the detach: report it",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----- command line -----------------------------------------------------------------------------------


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``doctor`` to the ``pydbgauto`` command's subparsers."""
    p = subparsers.add_parser(
        "doctor",
        help="check that the debugger, SOS, dotnet-dump, ptrace and disk are ready",
        description="Check that this machine can catch .NET exceptions and write dumps; each problem comes "
        "with the command that fixes it. Exit code 0 when everything needed is there, else 1.",
    )
    p.add_argument("--sample-app", metavar="PATH", help="a .NET app with a 'wait' mode to attach to for real")
    p.add_argument("--debugger", choices=["lldb", "cdb"], help="default: lldb on Linux, cdb on Windows")
    p.add_argument("--dump-dir", default=".", help="the folder dumps will go to (default: .)")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    debugger = args.debugger or ("cdb" if sys.platform == "win32" else "lldb")
    checks = run_checks(sample_app=args.sample_app, debugger=debugger, dump_dir=args.dump_dir)
    ok = all(c.ok for c in checks)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [c.to_dict() for c in checks]}, indent=1))
    else:
        for check in checks:
            print(check)
        print("ready" if ok else f"NOT ready: {sum(not c.ok for c in checks)} problem(s) above")
    return 0 if ok else 1
