"""A watch's input, checked before any debugger starts (watching/checks.py)."""

from __future__ import annotations

import os

import pytest

from pydbgauto.errors import ConfigurationError, DiskSpaceError
from pydbgauto.watching.checks import check_disk_for, free_disk, prepare
from pydbgauto.watching.decision_log import LOG_NAME


def _prepare(dump_dir: str, **changes):
    args = dict(
        when=None,
        dump_dir=dump_dir,
        max_dumps=2,
        skip_first=1,
        cooldown=5.0,
        dedupe=False,
        min_free_disk=0,
        name_template=None,
        verify=False,
        log_path=None,
        timeout=None,
        poll_interval=0.5,
    )
    args.update(changes)
    return prepare(**args)


def test_defaults_every_exception_a_policy_and_the_log_in_the_dump_folder(tmp_path) -> None:
    predicate, policy, log_path = _prepare(str(tmp_path))
    assert predicate.describe() == "first_chance() | second_chance()"
    assert (policy.dump_dir, policy.max_dumps, policy.skip_first, policy.cooldown) == (
        str(tmp_path),
        2,
        1,
        5.0,
    )
    assert not policy.dedupe_stack and not policy.dedupe_object and not policy.verify
    assert log_path == os.path.join(str(tmp_path), LOG_NAME)


def test_a_relative_dump_folder_and_log_become_absolute(tmp_path, monkeypatch) -> None:
    (tmp_path / "logs").mkdir()
    monkeypatch.chdir(tmp_path)
    _, policy, log_path = _prepare(".", log_path="logs/mine.jsonl", name_template="{pid}_{n}.core")
    assert policy.dump_dir == str(tmp_path) and log_path == str(tmp_path / "logs" / "mine.jsonl")
    assert policy.name_template == "{pid}_{n}.core"


@pytest.mark.parametrize(
    "changes, says",
    [
        (dict(timeout=0), "timeout must be positive"),
        (dict(timeout=-1.0), "timeout must be positive"),
        (dict(poll_interval=0), "poll_interval must be positive"),
        (dict(when=42), ""),
    ],
)
def test_bad_input_is_refused(tmp_path, changes, says) -> None:
    with pytest.raises(ConfigurationError, match=says):
        _prepare(str(tmp_path), **changes)


def test_missing_folders_are_refused(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        _prepare(str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        _prepare(str(tmp_path), log_path=str(tmp_path / "missing" / "log.jsonl"))


def test_disk_room_for_a_dump_of_the_process(tmp_path) -> None:
    check_disk_for(os.getpid(), str(tmp_path), 0)  # this test process fits (its memory, no more)
    with pytest.raises(DiskSpaceError, match="min_free_disk"):
        check_disk_for(os.getpid(), str(tmp_path), 1 << 62)
    assert free_disk(str(tmp_path)) and free_disk(str(tmp_path / "missing")) is None
