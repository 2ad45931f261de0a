"""Drivers: talk to one debugger process. They know bytes, markers and time limits, not SOS meaning."""

from pydbgauto.drivers.base import Driver, RawStop, StopKind, Target

__all__ = ["Driver", "RawStop", "StopKind", "Target"]
