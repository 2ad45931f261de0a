"""Tests that need the real parts (lldb, SOS, dotnet-dump, a built sample app) skip, or fail under
PYDBGAUTO_REQUIRE_INTEGRATION, with the list of what is missing."""

from __future__ import annotations

import os
from typing import List

import pytest

from pydbgauto import locate
from pydbgauto.errors import DebuggerNotFoundError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_NET10 = os.path.join(ROOT, ".build", "app-net10", "ThrowingApp")


def missing(app: str = APP_NET10) -> List[str]:
    """What of the sample app, lldb, SOS and dotnet-dump is not installed."""
    found = [] if os.access(app, os.X_OK) else [f"sample app {app}"]
    try:
        locate.find_lldb()
        locate.find_sos_plugin()
        locate.find_dotnet_dump()
    except DebuggerNotFoundError as e:
        found.append(str(e))
    return found


def require(what: str, app: str = APP_NET10) -> None:
    """Skip (or fail, under PYDBGAUTO_REQUIRE_INTEGRATION) the calling test when a real part is missing."""
    gone = missing(app)
    if gone:
        message = f"{what} need the real tools (run scripts/setup): " + "; ".join(gone)
        if os.environ.get("PYDBGAUTO_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)
