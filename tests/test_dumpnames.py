"""pydbgauto.dumpnames through DumpPolicy: the name template's checks, and the file names it gives."""

from __future__ import annotations

import math
import os
import re
from typing import Any, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydbgauto import dumpnames
from pydbgauto.dumpnames import safe_name_part
from pydbgauto.errors import ConfigurationError
from pydbgauto.policy import DumpPolicy

IOE = "System.InvalidOperationException"
SAFE = re.compile(r"[A-Za-z0-9._-]+")
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.mark.parametrize(
    "template, words",
    [
        ("../{n}.core", "path separator"),
        ("sub/{n}.core", "path separator"),
        ("/abs/{n}.core", "path separator"),
        ("..\\{n}.core", "path separator"),
        ("C:\\x{n}", "path separator"),
        ("C:x{n}", "':'"),
        ("{n}..core", "'..'"),
        ("..{n}", "'..'"),
        ("{n}\x00.core", "not allowed"),
        ("dump {n}.core", "not allowed"),
        ("{n}*.core", "not allowed"),
        ("{nope}_{n}", "unknown placeholder {nope}"),
        ("{0}_{n}", "unknown placeholder {0}"),
        ("{}_{n}", "unknown placeholder {}"),
        ("{process.__class__}_{n}", "unknown placeholder {process.__class__}"),
        ("{process[0]}_{n}", "unknown placeholder {process[0]}"),
        ("{process!r}_{n}", "conversions are not allowed"),
        ("{process:>300}_{n}", "is not allowed"),
        ("{process:/>10}_{n}", "path separator"),
        ("{n:\\>9}", "path separator"),
        ("{n:_>9}", "not allowed"),
        ("{n:{pid}}", "not allowed"),
        ("{n", "not a valid template"),
        ("}{n}", "not a valid template"),
        ("{{n}}", "'{' are not allowed"),
        (".{n}.core", "starts with '.'"),
        ("{n}.", "ends with '.'"),
        ("con.{n}", "Windows device name"),
        ("x" * 200 + "{n}_{process}", "limited to 255"),
        ("", "non-empty"),
    ],
)
def test_template_refused(template: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        DumpPolicy("/d", name_template=template, max_dumps=None)
    assert words in str(info.value)
    assert repr(template)[:20] in str(info.value)  # the message names the template


def test_template_without_n_only_for_one_dump() -> None:
    assert DumpPolicy("/d", name_template="{process}.core").max_dumps == 1
    with pytest.raises(ConfigurationError, match=r"has no \{n\}: with max_dumps=3 .* add \{n\}"):
        DumpPolicy("/d", name_template="{process}_{time}.core", max_dumps=3)


def test_template_not_a_string() -> None:
    with pytest.raises(ConfigurationError, match="non-empty file name template"):
        DumpPolicy("/d", name_template=None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# File names


def test_file_name_default() -> None:
    p = DumpPolicy("/dumps")
    assert p.file_name("ThrowingApp", 4242, IOE, T0, 1) == (
        "ThrowingApp_4242_1_System.InvalidOperationException_20231114-221320.core"
    )
    assert p.path("ThrowingApp", 4242, None, T0 + 0.999, 1) == os.path.join(
        "/dumps", "ThrowingApp_4242_1_unknown_20231114-221320.core"
    )


def test_file_name_int_formats_and_time_is_utc() -> None:
    p = DumpPolicy("/d", name_template="{time}-{pid:x}-{n:03d}.dmp", max_dumps=None)
    assert p.file_name("x", 255, None, 0, 7) == "19700101-000000-ff-007.dmp"


@pytest.mark.parametrize(
    "exception, expected",
    [
        ("../../etc/passwd", "____etc_passwd"),
        ("/etc/passwd", "_etc_passwd"),
        ("..\\..\\x", "____x"),
        ("..", "unknown"),
        (".", "unknown"),
        ("...", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
        (".hidden.", "hidden"),
        ("a\x00b", "a_b"),
        ("System.Collections.Generic.List`1[[System.Int32, System.Private.CoreLib]]",
         "System.Collections.Generic.List_1__System.Int32__System.Private.CoreLib__"),
        ("Namespace.Outer+Inner", "Namespace.Outer_Inner"),
        ("Ошибка", "unknown"),
        ("Ошибка.Ä", "unknown"),
        ("Fehler.Ä", "Fehler._"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("COM1", "_COM1"),
        ("COM10", "COM10"),
    ],
)  # fmt: skip
def test_hostile_exception_names(exception: Optional[str], expected: str) -> None:
    assert safe_name_part(exception) == expected
    name = DumpPolicy("/d").file_name("app", 1, exception, T0, 1)
    assert name == f"app_1_1_{expected}_20231114-221320.core"


def test_long_names_are_cut() -> None:
    p = DumpPolicy("/d", name_template="{exception}")
    name = p.file_name("p", 1, "A" * 1000, T0, 1)
    assert name == "A" * 80
    assert safe_name_part("a" * 79 + ".b") == "a" * 79  # cut, then the trailing dot dropped
    assert safe_name_part("a" * 79 + "..b") == "a" * 79 + "_"


def _inside(policy: DumpPolicy, name: str) -> bool:
    full = os.path.normpath(os.path.join(policy.dump_dir, name))
    return os.path.dirname(full) == os.path.normpath(policy.dump_dir)


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=300),
    st.one_of(st.none(), st.text(max_size=300)),
    st.integers(0, 2**31),
    st.floats(0, 4e9),
    st.integers(1, 10**6),
)
def test_any_input_gives_a_safe_name_inside_the_folder(
    process: str, exception: Optional[str], pid: int, when: float, n: int
) -> None:
    for template in ("{process}_{pid}_{n}_{exception}_{time}.core", "{exception}{n}", "{process}-{n}"):
        policy = DumpPolicy("/var/dumps", name_template=template, max_dumps=None)
        name = policy.file_name(process, pid, exception, when, n)
        assert SAFE.fullmatch(name), name
        assert ".." not in name and not name.startswith(".") and not name.endswith(".")
        assert len(name) <= 255
        assert _inside(policy, name)


@pytest.mark.parametrize(
    "args, words",
    [
        (("p", -1, "E", T0, 1), "pid"),
        (("p", "1", "E", T0, 1), "pid"),
        (("p", 1, "E", T0, 0), "n (the capture number)"),
        (("p", 1, "E", math.nan, 1), "when"),
        (("p", 1, "E", 1e20, 1), "not a usable epoch time"),
    ],
)
def test_file_name_refuses(args: Tuple[Any, ...], words: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        DumpPolicy("/d").file_name(*args)


def test_dump_policy_uses_these_functions() -> None:
    p = DumpPolicy("/d", name_template="{process}-{n:03d}.core", max_dumps=None)
    assert p.file_name("App", 1, None, T0, 7) == dumpnames.file_name(p.name_template, "App", 1, None, T0, 7)
    assert p.file_name("App", 1, None, T0, 7) == "App-007.core"
    with pytest.raises(ConfigurationError, match="has no {n}"):
        dumpnames.check_template("{process}.core", max_dumps=2)
    dumpnames.check_template("{process}.core", max_dumps=1)  # one dump needs no number
