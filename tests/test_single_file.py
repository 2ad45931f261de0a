"""pydbgauto.single_file on real files of this machine: what is not a single-file app, build ids, where a
DAC is found by its build id (the single-file apps themselves: tests/integration/test_single_file.py)."""

from __future__ import annotations

import glob
import os

import pytest

from pydbgauto import single_file

DACS = sorted(glob.glob("/usr/share/dotnet/shared/Microsoft.NETCore.App/*/libmscordaccore.so"))


def test_files_that_are_not_single_file_apps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = tmp_path / "text"
    text.write_text("not an ELF file")
    for path in ("/bin/ls", str(text), str(tmp_path / "missing")):
        assert single_file.runtime_info(path) is None


def test_a_build_id_is_the_gnu_note() -> None:
    found = single_file.build_id("/bin/ls")
    assert found is not None and len(found) == 20
    assert single_file.build_id("/etc/passwd") is None


@pytest.mark.skipif(not DACS, reason="no installed .NET runtime")
def test_a_dac_is_found_by_its_build_id_only(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "dac"
    folder.mkdir()
    os.symlink(DACS[-1], folder / single_file.DAC_NAME)
    wanted = single_file.RuntimeInfo(dac_build_id=single_file.build_id(DACS[-1]) or b"", file_version=None)
    assert single_file.find_dac_dir(wanted, [str(tmp_path), str(folder)]) == str(folder)
    other = single_file.RuntimeInfo(dac_build_id=b"\0" * 20, file_version=None)
    assert single_file.find_dac_dir(other, [str(folder)]) is None
    monkeypatch.setenv("PYDBGAUTO_DAC_DIR", str(folder))  # the user's choice: searched alone
    assert single_file.dac_candidates() == [str(folder)]
    monkeypatch.delenv("PYDBGAUTO_DAC_DIR")
    assert os.path.dirname(DACS[-1]) in single_file.dac_candidates()


def test_the_version_comes_from_the_dacs_folder() -> None:
    assert single_file.product_version("/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12") == "10.0.12"
    pack = "/root/.nuget/packages/microsoft.netcore.app.runtime.linux-x64/9.0.20/runtimes/linux-x64/native"
    assert single_file.product_version(pack) == "9.0.20"
    assert single_file.product_version("/opt/somewhere") is None


def test_a_file_that_is_no_core_lists_no_mapped_files() -> None:
    assert single_file.mapped_files("/bin/ls") == [] and single_file.dac_dir_for_core("/bin/ls") is None
