"""The package's public names: what __all__ promises is there, and stays a function after imports."""

from __future__ import annotations

import importlib
import pkgutil

import pydbgauto as pda

# Modules that import lldb's own module: they run inside lldb's Python (the agent and its mechanism).
AGENT_SIDE = {f"pydbgauto.drivers.lldb.{name}" for name in ("agent", "legacy_faults", "stack_reader")}


def test_all_names_exist():
    missing = [name for name in pda.__all__ if not hasattr(pda, name)]
    assert missing == []


def test_watch_stays_the_function_after_every_submodule_is_imported():
    for info in pkgutil.walk_packages(pda.__path__, "pydbgauto."):
        if info.name in AGENT_SIDE or info.name.startswith(("pydbgauto.pytest_plugin", "pydbgauto.__main__")):
            continue  # the agent runs inside lldb; the plugin is pytest's; __main__ runs the CLI
        importlib.import_module(info.name)
    assert callable(pda.watch) and pda.watch.__name__ == "watch"
    assert callable(pda.analyze) and pda.analyze.__name__ == "analyze"
    assert isinstance(pda.Session, type)
