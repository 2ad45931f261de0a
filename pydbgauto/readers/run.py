"""Run a dump reader (dotnet-dump, lldb, cdb -z) as a child process; its failures as pydbgauto errors."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Dict, List, Optional

from pydbgauto import locate
from pydbgauto.errors import DebuggerNotFoundError, DebuggerTimeoutError

__all__ = ["reader_env", "remaining", "run_reader", "tail"]


def reader_env() -> Dict[str, str]:
    """The environment for dotnet-dump (also what ``doctor`` checks it with)."""
    env = dict(os.environ)
    # dotnet-dump targets net8.0; let it run on whichever newer runtime the machine has.
    env.setdefault("DOTNET_ROLL_FORWARD", "Major")
    env.setdefault("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
    return env


def run_reader(
    argv: List[str], name: str, path: str, timeout: Optional[float], env: Optional[Dict[str, str]] = None
) -> "subprocess.CompletedProcess[str]":
    """Run ``argv`` (reader ``name`` on the dump ``path``) to its end, within ``timeout`` seconds."""
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise DebuggerTimeoutError(
            f"{name} did not finish reading {path} within {timeout:.0f} s: give it more time (timeout)"
        ) from e
    except OSError as e:
        raise DebuggerNotFoundError(f"cannot run {argv[0]}: {e}: {locate.SOS_HINT}") from e


def remaining(deadline: Optional[float], path: str, name: str) -> Optional[float]:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value; None: no limit)."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DebuggerTimeoutError(f"{name} did not finish reading {path} in time: raise --timeout")
    return left


def tail(text: str) -> str:
    """The last lines of a reader's output, for an error message."""
    return " ".join(text.strip().splitlines()[-3:])[-400:] or "(no output)"
