"""Capture records on disk: new files only, mode 0600, never through a symlink."""

from __future__ import annotations

import json
import os

import pytest

from pydbgauto.errors import DumpError
from pydbgauto.watching.records import write_all, write_new_json


def test_capture_record_refuses_symlinks_and_existing_files(tmp_path, umask_000):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "a.core.json").symlink_to(victim)
    with pytest.raises(DumpError, match="symlink"):
        write_new_json(str(tmp_path / "a.core.json"), {"x": 1})
    assert victim.read_text() == "precious"
    (tmp_path / "b.core.json").write_text("{}")
    with pytest.raises(DumpError, match="a file is already"):
        write_new_json(str(tmp_path / "b.core.json"), {"x": 1})
    write_new_json(str(tmp_path / "c.core.json"), {"x": 1})
    assert os.stat(tmp_path / "c.core.json").st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "c.core.json").read_text()) == {"x": 1}


def test_write_all_writes_everything(tmp_path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: more than one pipe's worth, in as many writes as it takes
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == data
