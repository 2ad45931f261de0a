"""The package's public names: what __all__ promises is there, nothing public is missing from it, no
public name is shadowed by a submodule, and ``import pydbgauto`` loads no debugger machinery."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import types
from typing import List

import pytest

import pydbgauto as pda

# What `import pydbgauto` must not load: sessions, drivers, process helpers, the agent, lldb itself.
HEAVY = (
    "pydbgauto.session",
    "pydbgauto.drivers",
    "pydbgauto.locate",
    "pydbgauto.processes",
)


def _submodules() -> List[str]:
    return sorted(info.name for info in pkgutil.iter_modules(pda.__path__))


# Modules that import lldb's own module: they run inside lldb's Python (the agent and its mechanism).
AGENT_SIDE = {f"pydbgauto.drivers.lldb.{name}" for name in ("agent", "legacy_faults", "stack_reader")}


def test_all_names_exist():
    missing = [name for name in pda.__all__ if not hasattr(pda, name)]
    assert missing == []


def test_all_has_no_repeats():
    assert len(pda.__all__) == len(set(pda.__all__))


def test_every_public_name_is_in_all():
    public = []
    for name in dir(pda):
        value = getattr(pda, name)
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if getattr(value, "__module__", "").startswith("pydbgauto"):  # not typing.Any and the like
            public.append(name)
    assert public, "the package defines no public names: the check looked at nothing"
    assert [name for name in public if name not in pda.__all__] == []
    # the lazily loaded names are in __all__ too, though dir() does not show them before first use
    assert [name for name in pda._LAZY if name not in pda.__all__] == []


@pytest.mark.parametrize(
    "name",
    pda.__all__,
)
def test_no_public_name_is_a_submodule(name):
    # importing a submodule named like a public function replaces the function on the package
    assert name not in _submodules()


def test_submodules_are_found():
    assert {"models", "policy", "watching", "sos"} <= set(_submodules())  # the check above sees them


def test_import_loads_no_debugger_machinery():
    code = "import json, sys, pydbgauto; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert "pydbgauto.models" in loaded and "pydbgauto.sos.pe" in loaded  # the pure parts are there
    heavy = [m for m in loaded if m.startswith(HEAVY) or m == "lldb" or m.startswith("lldb.")]
    assert heavy == []


# Run in a fresh interpreter: in this one, earlier tests have already looked the names up.
_IMPORT_EVERY_SUBMODULE = """
import importlib, pkgutil, pydbgauto as pda
for info in pkgutil.walk_packages(pda.__path__, "pydbgauto."):
    agent_side = info.name.rsplit(".", 1)[-1] in ("agent", "legacy_faults", "stack_reader")
    if not agent_side and not info.name.startswith(("pydbgauto.pytest_plugin", "pydbgauto.__main__")):
        importlib.import_module(info.name)  # the agent runs inside lldb; the plugin is pytest's
value = getattr(pda, NAME)
print(callable(value) and value.__name__ == NAME)
"""


@pytest.mark.parametrize(
    "name",
    [
        "watch",
        "watch_all",
        "survey",
        "dump_now",
        "analyze",
    ],
)
def test_function_stays_the_function_after_every_submodule_is_imported(name):
    code = _IMPORT_EVERY_SUBMODULE.replace("NAME", repr(name))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_watch_stays_the_function_after_every_submodule_is_imported():
    for info in pkgutil.walk_packages(pda.__path__, "pydbgauto."):
        if info.name in AGENT_SIDE or info.name.startswith(("pydbgauto.pytest_plugin", "pydbgauto.__main__")):
            continue  # the agent runs inside lldb; the plugin is pytest's; __main__ runs the CLI
        importlib.import_module(info.name)
    assert callable(pda.watch) and pda.watch.__name__ == "watch"
    assert callable(pda.analyze) and pda.analyze.__name__ == "analyze"
    assert isinstance(pda.Session, type)
