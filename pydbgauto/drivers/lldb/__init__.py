"""The Linux driver as one folder: the driver (a child lldb), the agent that runs inside lldb's Python,
the watchdog and the guardian that outlive us.

``LldbDriver`` loads on first use: the agent imports modules of this package inside lldb's embedded
Python, where the driver's own imports (subprocess machinery, locate, processes) are not wanted.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydbgauto.drivers.lldb.driver import LldbDriver

__all__ = ["LldbDriver"]


def __getattr__(name: str) -> Any:
    if name == "LldbDriver":
        from pydbgauto.drivers.lldb.driver import LldbDriver

        return LldbDriver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
