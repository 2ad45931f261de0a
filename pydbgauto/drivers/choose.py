"""Which driver a Session gets: by name ("lldb", "cdb", "pykd"), a driver instance, or a factory."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from pydbgauto.drivers.base import Driver, Target
from pydbgauto.errors import ConfigurationError


def default_debugger() -> str:
    return "cdb" if sys.platform == "win32" else "lldb"


def make_driver(target: Target, debugger: Any, options: Mapping[str, Any]) -> Driver:
    """A driver for ``debugger``: "lldb", "cdb", "pykd", a Driver instance (used as is: custom drivers,
    test doubles), or a callable ``(target, **options) -> Driver``."""
    if debugger is not None and not isinstance(debugger, str):
        if isinstance(debugger, Driver):
            return debugger
        if callable(debugger):
            return debugger(target, **options)  # type: ignore[no-any-return]
        raise ConfigurationError(f"debugger must be 'lldb', 'cdb', 'pykd' or a driver, not {debugger!r}")
    name = debugger or default_debugger()
    if name == "lldb":
        from pydbgauto.drivers.lldb import LldbDriver

        return LldbDriver(target, **options)
    if name == "cdb":
        from pydbgauto.drivers.cdb import CdbDriver

        return CdbDriver(target, **options)
    if name == "pykd":
        from pydbgauto.drivers.pykd_driver import PykdDriver

        return PykdDriver(target, **options)  # type: ignore[call-arg]
    raise ConfigurationError(f"unknown debugger {name!r}: use 'lldb' (Linux), 'cdb' or 'pykd' (Windows)")
