"""Where the cdb TEST BED is, and how tests run Windows programs under Wine beside it.

The test bed (this folder) is ``cdbhost.exe``, a small console of this project's own over Microsoft's
real debugger engine (``dbgeng.dll``), run under Debian's Wine by the ``cdb`` script here. It is not
cdb.exe. ``scripts/setup`` builds it into ``.build/wine/`` with the engine, a Wine prefix, the win-x64
``sos.dll`` and the sample app published for win-x64. :func:`find` says whether all of that is there.

Every Wine process a test starts (debugger, target, wineserver) lives in the test bed's own Wine prefix;
:func:`end_wine` ends them all (``wineserver -k``) and :func:`wine_processes` tells whether any is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import attr

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WINE64 = "/usr/lib/wine/wine64"
WINESERVER = "/usr/lib/wine/wineserver"
DLL_OVERRIDES = "dbgeng,dbghelp,dbgcore,dbgmodel=n,b"


def wine_dir() -> Path:
    return Path(os.environ.get("PYDBGAUTO_WINE_DIR") or ROOT / ".build" / "wine")


@attr.s(frozen=True, auto_attribs=True)
class Testbed:
    cdb: str  # the wrapper script, given to CdbDriver as cdb_path
    sos: str  # the win-x64 sos.dll from the dotnet-dump package
    apps: Dict[str, str]  # "net10"/"net8" -> ThrowingApp.exe published -r win-x64 --self-contained
    prefix: str  # the Wine prefix

    def app(self, runtime: str = "net10") -> str:
        return self.apps[runtime]

    def symbol_path(self, runtime: str = "net10") -> str:
        """The app's own folder (its PDBs), as a Windows path: never the symbol server (no internet)."""
        return windows_path(os.path.dirname(self.apps[runtime]))

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            WINEPREFIX=self.prefix,
            WINEDLLOVERRIDES=DLL_OVERRIDES,
            WINEDEBUG=os.environ.get("WINEDEBUG", "-all"),
            WINELOADER=WINE64,
        )
        return env


def windows_path(path: str) -> str:
    """Wine's Z: drive is the Unix root."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


def find() -> "Testbed | str":
    """The test bed, or why it cannot be used (a skip reason)."""
    if os.environ.get("PYDBGAUTO_NO_WINE"):
        return "PYDBGAUTO_NO_WINE is set: the cdb test bed under Wine is switched off"
    base = wine_dir()
    missing: List[str] = []
    if not os.access(WINE64, os.X_OK):
        missing.append(f"{WINE64} (Debian's wine64)")
    host = base / "host" / "cdbhost.exe"
    if not host.is_file():
        missing.append(str(host))
    sos = base / "sos" / "sos.dll"
    if not sos.is_file():
        missing.append(str(sos))
    apps = {r: str(base / f"app-{r}-win" / "ThrowingApp.exe") for r in ("net10", "net8")}
    missing += [p for p in apps.values() if not os.path.isfile(p)]
    prefix = Path(os.environ.get("PYDBGAUTO_WINE_PREFIX") or base / "prefix")  # as tests/cdb_testbed/cdb
    if not (prefix / "system.reg").is_file():
        missing.append(f"the Wine prefix {prefix}")
    if missing:
        return "cdb test bed not set up (run scripts/setup): missing " + ", ".join(missing)
    return Testbed(cdb=str(HERE / "cdb"), sos=str(sos), apps=apps, prefix=str(prefix))


def wine_processes(prefix: str) -> List[int]:
    """Pids of processes whose environment names this Wine prefix (debugger, targets, wineserver)."""
    want = f"WINEPREFIX={prefix}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def end_wine(tb: Testbed, timeout: float = 20.0) -> List[int]:
    """End every Wine process of the test bed's prefix; return those still there after ``timeout``."""
    env = tb.env()
    subprocess.run(
        [WINESERVER, "-k"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    deadline = time.monotonic() + timeout
    left = wine_processes(tb.prefix)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in wine_processes(tb.prefix) if not _zombie(p)]
    return left


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


class SampleApp:
    """The sample app (any scenario; ``wait`` takes one scenario per line sent), its stdout drained by a
    thread. ``pid`` is the pid it prints on its first line: under Wine its *Windows* pid, the one the
    debugger attaches to."""

    def __init__(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        self.lines: List[str] = []
        self._changed = threading.Condition()
        self._done = False
        threading.Thread(target=self._read, daemon=True).start()
        first = self.wait_for_line("PID ", 120)
        assert first, f"the sample app printed no PID line: {self.lines}"
        self.pid = int(first.split()[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\r\n"))
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for_line(self, prefix: str, timeout: float) -> Optional[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    return None
                self._changed.wait(min(left, 0.2))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@attr.s(auto_attribs=True)
class Bed:
    """What a real-debugger test needs, from a real cdb.exe (Windows) or from the test bed (Wine)."""

    origin: str  # "cdb.exe" or "test bed"
    cdb: str
    apps: Dict[str, str]
    symbol_path: Optional[str] = None
    sos_path: Optional[str] = None
    env: Optional[Dict[str, str]] = None
    testbed: Optional[Testbed] = None

    def app(self, runtime: str = "net10") -> str:
        if runtime not in self.apps:
            import pytest

            pytest.skip(f"the sample app for {runtime} is not built")
        return self.apps[runtime]

    def argv(self, runtime: str, *args: str) -> List[str]:
        """The command line that starts the sample app (under Wine for the test bed)."""
        prefix = [WINE64] if self.testbed else []
        return [*prefix, self.app(runtime), *args]

    def start_app(self, *args: str, runtime: str = "net10") -> SampleApp:
        return SampleApp(self.argv(runtime, *args), self.env)

    def driver_options(self, runtime: str = "net10") -> Dict[str, object]:
        options: Dict[str, object] = {"cdb_path": self.cdb}
        if self.testbed:
            options.update(
                symbol_path=self.testbed.symbol_path(runtime), sos_path=self.sos_path, env=self.env
            )
        return options


def windows_bed() -> "Bed | str":
    """A real cdb.exe on Windows and the sample app built for Windows, or why not."""
    from pydbgauto.drivers.cdb_locate import find_cdb
    from pydbgauto.errors import DebuggerNotFoundError

    try:
        cdb = find_cdb()
    except DebuggerNotFoundError as e:
        return str(e)
    given = os.environ.get("PYDBGAUTO_SAMPLE_APP")
    apps: Dict[str, str] = {}
    if given and os.path.isfile(given):
        apps = {"net10": given, "net8": given}
    for runtime, tfm in (("net8", "net8.0"), ("net10", "net10.0")):
        for config in ("Debug", "Release"):
            exe = ROOT / "examples" / "ThrowingApp" / "bin" / config / tfm / "ThrowingApp.exe"
            if exe.is_file() and runtime not in apps:
                apps[runtime] = str(exe)
    if not apps:
        return "sample app not built: dotnet build examples/ThrowingApp -f net8.0"
    if "net10" not in apps:
        apps["net10"] = apps["net8"]  # the scenarios are the same on either runtime
    return Bed(origin="cdb.exe", cdb=cdb, apps=apps)


def find_bed() -> "Bed | str":
    """A real cdb.exe on Windows; elsewhere the test bed under Wine. A string says why there is none."""
    if sys.platform == "win32":
        return windows_bed()
    tb = find()
    if isinstance(tb, str):
        return tb
    return Bed(
        origin="test bed",
        cdb=tb.cdb,
        apps=dict(tb.apps),
        symbol_path=tb.symbol_path(),
        sos_path=tb.sos,
        env=tb.env(),
        testbed=tb,
    )


def bed_or_skip() -> Bed:
    """:func:`find_bed`, or skip (fail in CI, where the set-up must have built it unless opted out)."""
    import pytest

    bed = find_bed()
    if isinstance(bed, str):
        if (
            os.environ.get("PYDBGAUTO_REQUIRE_INTEGRATION")
            and sys.platform != "win32"
            and not os.environ.get("PYDBGAUTO_NO_WINE")
        ):
            pytest.fail(bed)
        pytest.skip(bed)
    return bed


def clean_up(bed: Bed) -> None:
    """After a test: end every Wine process of the test bed (wineserver included) and check none is left."""
    if bed.testbed is None:
        return
    left = end_wine(bed.testbed)
    assert not left, f"Wine processes left behind: {left}"
