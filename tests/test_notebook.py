"""examples/triage.ipynb runs top to bottom on the real lldb + SOS and shows what it says it shows."""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Dict, Iterator, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "triage.ipynb")
APP = os.path.join(ROOT, ".build", "app-net8", "ThrowingApp")

nbformat = pytest.importorskip("nbformat")


def _cell(nb: Any, tag: str) -> Any:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected, found {len(cells)}"
    return cells[0]


def _outputs(cell: Any, mime: str) -> str:
    """All of a cell's output of one MIME type ("text/html", "text/plain"; "stream" for printed text)."""
    texts: List[str] = []
    for out in cell.get("outputs", []):
        if mime == "stream" and out.get("output_type") == "stream":
            texts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            if mime in data:
                texts.append(data[mime] if isinstance(data[mime], str) else "".join(data[mime]))
    return "\n".join(texts)


def test_the_notebook_is_valid_and_finds_its_root_without_the_variable() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    setup = _cell(nb, "setup").source
    assert 'os.environ.get("PYDBGAUTO_ROOT")' in setup and "os.getcwd()" in setup
    assert "pydbgauto.__file__" in setup  # from any working folder: where the importable package lives
    # a markdown cell explains each step
    kinds = [c.cell_type for c in nb.cells]
    assert kinds.count("markdown") >= 9
    tags = (
        "event",
        "exception",
        "stack",
        "threads",
        "dump",
        "detach",
        "reopened",
        "reopened-exception",
        "watch",
    )
    for tag in tags:
        assert _cell(nb, tag).cell_type == "code"


@pytest.fixture
def kernel_env(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, str]]:
    """A python3 kernel of this interpreter, with pydbgauto importable; made in tmp_path if missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        usable = os.path.realpath(spec.argv[0]) == os.path.realpath(sys.executable)
    except NoSuchKernel:
        usable = False
    if not usable:
        from ipykernel.kernelspec import install

        prefix = str(tmp_path / "kernel")
        install(prefix=prefix, kernel_name="python3")
        monkeypatch.setenv("JUPYTER_PATH", os.path.join(prefix, "share", "jupyter"))
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", ROOT + (os.pathsep + path if path else ""))
    monkeypatch.setenv("PYDBGAUTO_ROOT", ROOT)
    monkeypatch.setenv("PYDBGAUTO_APP", APP)
    monkeypatch.setenv("PYDBGAUTO_DUMP_DIR", str(tmp_path))
    monkeypatch.setenv(
        "PYDEVD_DISABLE_FILE_VALIDATION", "1"
    )  # the kernel's debugpy warns on stderr otherwise
    yield dict(os.environ)


def _missing() -> List[str]:
    missing = [] if os.access(APP, os.X_OK) else [f"sample app {APP} (run scripts/setup)"]
    try:
        from pydbgauto import locate

        locate.find_lldb()
        locate.find_sos_plugin()
        locate.find_dotnet_dump()
    except Exception as e:  # noqa: BLE001 - report whatever is missing
        missing.append(str(e))
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError as e:
        missing.append(str(e))
    return missing


@pytest.mark.lldb
@pytest.mark.slow
@pytest.mark.skipif(bool(_missing()), reason="; ".join(_missing()))
def test_the_triage_notebook_runs_and_shows_the_exception_and_a_verified_dump(
    kernel_env: Dict[str, str], tmp_path: Any
) -> None:
    import nbclient

    # from another working folder, without PYDBGAUTO_ROOT: the notebook finds the checkout by itself
    del kernel_env["PYDBGAUTO_ROOT"]
    os.environ.pop("PYDBGAUTO_ROOT", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(elsewhere)}}
    )
    client.execute()

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), "a code cell did not run"

    event_html = _outputs(_cell(nb, "event"), "text/html")
    assert "System.InvalidOperationException" in event_html and "first-chance" in event_html

    exception_html = _outputs(_cell(nb, "exception"), "text/html")
    assert "System.InvalidOperationException" in exception_html
    assert "The order queue timeout expired" in exception_html

    assert "ThrowingApp.Program.ThrowInvalidOperation" in _outputs(_cell(nb, "stack"), "text/html")
    assert "<table" in _outputs(_cell(nb, "threads"), "text/html")

    dumps = [f for f in os.listdir(tmp_path) if f.startswith("triage.core")]
    assert dumps == ["triage.core"], dumps
    path = os.path.join(str(tmp_path), "triage.core")
    dump_cell = _cell(nb, "dump")
    printed = _outputs(dump_cell, "stream")
    assert f"dump written to {path}: verified by dotnet-dump analyze" in printed
    dump_html = _outputs(dump_cell, "text/html")
    assert path in dump_html and "\u2713 verified" in dump_html

    assert "still running: True" in _outputs(_cell(nb, "detach"), "stream")
    assert path in _outputs(_cell(nb, "reopened"), "text/html")
    assert "same object as at the stop: True" in _outputs(_cell(nb, "reopened-exception"), "stream")
    assert "ThrowingApp.Program.ThrowInvalidOperation" in _outputs(_cell(nb, "reopened-stack"), "text/html")
    reopened = _outputs(_cell(nb, "reopened-exception"), "text/html")
    assert "System.InvalidOperationException" in reopened and "The order queue timeout expired" in reopened
    assert f"project: {ROOT}" in _outputs(_cell(nb, "setup"), "stream")
    # the live view (one display, updated in place) ended at the dump, and the result shows itself
    watch_cell = _cell(nb, "watch")
    live = [o for o in watch_cell.get("outputs", []) if o.get("output_type") == "display_data"]
    assert len(live) == 1, watch_cell.get("outputs")
    live_html = "".join(live[0]["data"]["text/html"])
    assert "exceptions seen" in live_html and "ended: max-dumps" in live_html
    assert "ThrowingApp.OrderRejectedException" in live_html
    result_html = "".join(
        o["data"]["text/html"]
        for o in watch_cell.get("outputs", [])
        if o.get("output_type") == "execute_result"
    )
    assert (
        "1 captures; ended: max-dumps" in result_html and "ThrowingApp.OrderRejectedException" in result_html
    )
    assert "exit status: 0" in _outputs(_cell(nb, "cleanup"), "stream")
    started = re.search(r"the app runs as pid (\d+)", _outputs(_cell(nb, "start"), "stream"))
    assert started, "the start cell did not print the app's pid"
    assert not _running(int(started.group(1))), "the sample app outlived the notebook"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] not in "ZX"
