"""A watch's input, checked before any debugger starts: predicate, dump policy, decision-log path, time
limits, and room on the disk for a dump of the target."""

from __future__ import annotations

import os
import shutil
from typing import Any, Dict, Optional, Tuple

from pydbgauto import predicates as preds
from pydbgauto import processes
from pydbgauto.errors import ConfigurationError, DiskSpaceError
from pydbgauto.policy import DumpPolicy
from pydbgauto.dumpfile import check_dump_folder
from pydbgauto.watching.decision_log import LOG_NAME


def prepare(
    when: Any,
    dump_dir: str,
    max_dumps: Optional[int],
    skip_first: int,
    cooldown: float,
    dedupe: bool,
    min_free_disk: int,
    name_template: Optional[str],
    verify: bool,
    log_path: Optional[str],
    timeout: Optional[float],
    poll_interval: float,
) -> Tuple[preds.Predicate, DumpPolicy, str]:
    """The checked predicate, dump policy and decision-log path of a watch (one process or several):
    bad input is refused here, before any debugger starts."""
    predicate = (
        preds.as_predicate(when) if when is not None else (preds.first_chance() | preds.second_chance())
    )
    dump_dir = os.path.abspath(dump_dir)
    check_dump_folder(dump_dir)
    policy_args: Dict[str, Any] = dict(
        dump_dir=dump_dir,
        max_dumps=max_dumps,
        skip_first=skip_first,
        cooldown=cooldown,
        dedupe_stack=dedupe,
        dedupe_object=dedupe,
        min_free_disk=min_free_disk,
        verify=verify,
    )
    if name_template is not None:
        policy_args["name_template"] = name_template
    policy = DumpPolicy(**policy_args)
    log_path = os.path.abspath(log_path or os.path.join(dump_dir, LOG_NAME))
    check_dump_folder(os.path.dirname(log_path))
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(
            f"timeout must be positive seconds (or None to wait for ever), not {timeout!r}"
        )
    if poll_interval <= 0:
        raise ConfigurationError(f"poll_interval must be positive seconds, not {poll_interval!r}")
    return predicate, policy, log_path


def check_disk_for(pid: int, folder: str, min_free_disk: int) -> None:
    """Refuse up front when the dump folder cannot hold a dump of ``pid`` plus ``min_free_disk``."""
    free = free_disk(folder)
    need = processes.memory_size(pid)
    if free is None or not need:
        return
    if free < need + min_free_disk:
        raise DiskSpaceError(
            f"the dump folder {folder} has {_mib(free)} free; a dump of pid {pid} can take up to "
            f"{_mib(need)} (its readable memory) and min_free_disk is {_mib(min_free_disk)}: free some "
            "space, choose another --dump-dir, or lower --min-free-disk"
        )


def free_disk(folder: str) -> Optional[int]:
    """Free bytes in ``folder`` (None: it cannot be told)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.0f} MiB"
