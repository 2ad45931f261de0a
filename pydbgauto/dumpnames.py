"""Dump file names: the name template's placeholders, its checks, and filling it with safe values. Pure.

``when`` (for :func:`file_name`) is seconds since the epoch (``time.time()``), printed in UTC.
:class:`pydbgauto.policy.DumpPolicy` holds the template and calls these; deciding *whether* to dump is
:mod:`pydbgauto.policy`'s job.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import string
from typing import Any, Dict, Optional, Tuple

from pydbgauto.errors import ConfigurationError

__all__ = ["DEFAULT_TEMPLATE", "PLACEHOLDERS", "check_template", "file_name", "is_int", "safe_name_part"]

PLACEHOLDERS: Tuple[str, ...] = ("process", "pid", "exception", "time", "n")
DEFAULT_TEMPLATE = "{process}_{pid}_{n}_{exception}_{time}.core"

# One value put into a file name: at most this many characters, of these.
_PART_MAX = 80
_NAME_MAX = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_INT_SPEC = re.compile(r"0?[1-9]?[0-9]?[dxX]?")
# Device names Windows refuses as a file's stem, whatever the extension.
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)
# Worst-case values to check a template's longest name: pid_max on Linux is 2**22.
_SAMPLE_LONG: Dict[str, Any] = {
    "process": "p" * _PART_MAX,
    "pid": 4194304,
    "exception": "e" * _PART_MAX,
    "time": "20240229-235959",
    "n": 999999,
}


def safe_name_part(text: Optional[str], default: str = "unknown") -> str:
    """``text`` made safe as part of a file name: only ``[A-Za-z0-9._-]``, no ``..``, no leading or
    trailing dot, not a Windows device name, at most 80 characters; ``default`` when no letter or digit
    is left."""
    value = _UNSAFE.sub("_", text or "")
    value = re.sub(r"\.{2,}", "_", value)[:_PART_MAX].strip(".")
    if not re.search("[A-Za-z0-9]", value):  # nothing recognisable left ("", "_", "___" of "Ошибка")
        return default
    if value.split(".")[0].upper() in _RESERVED:
        value = "_" + value[: _PART_MAX - 1]
    return value


def _name_problem(name: str) -> Optional[str]:
    """Why ``name`` is not a safe file name inside the dump folder, or None."""
    if not name:
        return "it is empty"
    bad = sorted(set(_UNSAFE.findall(name)))
    if bad:
        return f"it contains {''.join(bad)!r}; only letters, digits, '.', '_' and '-' are allowed"
    if ".." in name:
        return "it contains '..'"
    if name.startswith("."):
        return "it starts with '.' (a hidden file)"
    if name.endswith("."):
        return "it ends with '.' (Windows and cdb drop or refuse it)"
    if name.split(".")[0].upper() in _RESERVED:
        return f"its stem {name.split('.')[0]!r} is a Windows device name"
    if len(name) > _NAME_MAX:
        return f"it is {len(name)} characters long; file names are limited to {_NAME_MAX}"
    return None


def _utc_stamp(when: float) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"time {when!r} is not a usable epoch time ({exc}); pass time.time()"
        ) from None
    return moment.strftime("%Y%m%d-%H%M%S")


def is_int(value: Any) -> bool:
    """A whole number, and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_template(template: Any, max_dumps: Optional[int]) -> None:
    """Raise ConfigurationError unless ``template`` (``DumpPolicy.name_template``) can only give safe,
    distinct file names inside the dump folder; ``max_dumps`` other than 1 needs ``{n}``."""
    what = f"DumpPolicy.name_template {template!r}"
    if not isinstance(template, str) or not template:
        raise ConfigurationError(f"{what}: give a non-empty file name template, e.g. {DEFAULT_TEMPLATE!r}")
    if "/" in template or "\\" in template or os.path.isabs(template):
        raise ConfigurationError(
            f"{what} contains a path separator: the template names a file inside dump_dir; "
            "put any folder into dump_dir instead"
        )
    if ".." in template:
        raise ConfigurationError(f"{what} contains '..'; a dump name must stay inside dump_dir")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(
            f"{what} is not a valid template ({exc}); write '{{{{' and '}}}}' for literal braces, "
            "or better, leave braces out of file names"
        ) from None
    fields = set()
    for literal, field, spec, conversion in parsed:
        unsafe = _UNSAFE.findall(literal)
        if unsafe:
            raise ConfigurationError(
                f"{what}: the characters {''.join(sorted(set(unsafe)))!r} are not allowed in a dump "
                "name; use letters, digits, '.', '_' and '-' besides the placeholders"
            )
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise ConfigurationError(
                f"{what}: unknown placeholder {{{field}}}; use "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            )
        if conversion is not None:
            raise ConfigurationError(f"{what}: {{{field}!{conversion}}}: conversions are not allowed")
        if spec and (field not in ("pid", "n") or not _INT_SPEC.fullmatch(spec)):
            raise ConfigurationError(
                f"{what}: the format '{{{field}:{spec}}}' is not allowed; only {{pid}} and {{n}} take "
                "a simple int format such as {n:03d}"
            )
        fields.add(field)
    if "n" not in fields and max_dumps != 1:
        raise ConfigurationError(
            f"{what} has no {{n}}: with max_dumps={max_dumps!r} several dumps would get the same "
            "name; add {n} (the capture number)"
        )
    for sample in (_SAMPLE_LONG, {"process": "p", "pid": 0, "exception": "e", "time": "t", "n": 1}):
        name = template.format(**sample)
        problem = _name_problem(name)
        if problem:
            raise ConfigurationError(f"{what} gives names such as {name[:60]!r}...: {problem}; shorten it")


def file_name(template: str, process: str, pid: int, exception: Optional[str], when: float, n: int) -> str:
    """The dump's file name (no folder): the template filled with safe values."""
    if not is_int(pid) or pid < 0:
        raise ConfigurationError(f"file_name: pid must be an int >= 0, not {pid!r}")
    if not is_int(n) or n < 1:
        raise ConfigurationError(f"file_name: n (the capture number) must be an int >= 1, not {n!r}")
    if not isinstance(when, (int, float)) or isinstance(when, bool) or not math.isfinite(when):
        raise ConfigurationError(f"file_name: when must be seconds since the epoch, not {when!r}")
    name = template.format(
        process=safe_name_part(process, "process"),
        pid=pid,
        exception=safe_name_part(exception, "unknown"),
        time=_utc_stamp(when),
        n=n,
    )
    problem = _name_problem(name)
    if problem:  # validation should make this unreachable; never hand out an unsafe name
        raise ConfigurationError(f"dump name {name!r} is not safe: {problem}")
    return name
