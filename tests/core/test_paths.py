"""Paths: LLAMADESK_HOME, platform folders, the resources folder."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from llamadesk.core import paths

ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"

# -- paths ------------------------------------------------------------------------------------


def test_home_relocates_every_folder(home: Path) -> None:
    p = paths.app_paths()
    base = home.resolve()
    folders = [p.data_dir, p.config_dir, p.cache_dir, p.log_dir, p.models_dir]
    assert len(set(folders)) == len(folders)
    for folder in [*folders, p.database, p.settings_file, p.log_file, p.downloads_dir]:
        assert folder.is_relative_to(base), folder
    assert p.database.parent == p.data_dir
    assert p.settings_file.parent == p.config_dir
    assert p.log_file.parent == p.log_dir
    assert p.downloads_dir.parent == p.models_dir


def test_explicit_home_wins_over_the_environment(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "portable"
    p = paths.app_paths(other)
    assert p.data_dir.is_relative_to(other.resolve())
    assert not p.data_dir.is_relative_to(home.resolve())


def test_home_expands_the_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv(paths.HOME_ENV, "~/portable")
    p = paths.app_paths()
    assert p.config_dir.is_relative_to((tmp_path / "user" / "portable").resolve())


def test_without_home_the_platform_folders_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.HOME_ENV)
    p = paths.app_paths()  # only computed: ensure() is not called on the real folders
    dirs = platformdirs.PlatformDirs(paths.APP_DIR_NAME, appauthor=False)
    assert p.data_dir == Path(dirs.user_data_dir)
    assert p.config_dir == Path(dirs.user_config_dir)
    assert p.cache_dir == Path(dirs.user_cache_dir)
    assert p.log_dir == Path(dirs.user_log_dir)
    assert p.models_dir == Path(dirs.user_data_dir) / "models"
    assert paths.APP_DIR_NAME in str(p.data_dir)


def test_empty_home_variable_means_platform_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.HOME_ENV, "")
    dirs = platformdirs.PlatformDirs(paths.APP_DIR_NAME, appauthor=False)
    assert paths.app_paths().config_dir == Path(dirs.user_config_dir)


def test_ensure_creates_the_folders(home: Path) -> None:
    p = paths.app_paths()
    assert not home.exists()
    assert p.ensure() is p
    for folder in (p.data_dir, p.config_dir, p.cache_dir, p.log_dir, p.models_dir):
        assert folder.is_dir()
    p.ensure()  # a second time is harmless
    assert not p.database.exists()  # folders only


def test_resources_dir_defaults_to_the_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.RESOURCES_ENV, raising=False)
    assert paths.resources_dir() == REAL_RESOURCES
    assert (paths.resources_dir() / "bundled-model.json").is_file()
    assert paths.bundled_models_dir() == REAL_RESOURCES / "models"


def test_resources_dir_honours_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.RESOURCES_ENV, str(tmp_path / "res"))
    assert paths.resources_dir() == tmp_path / "res"
    assert paths.bundled_models_dir() == tmp_path / "res" / "models"


def test_resources_dir_in_a_frozen_bundle(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.RESOURCES_ENV, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert paths.resources_dir() == tmp_path / "bundle" / "resources"




def test_file_identity_changes_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    assert paths.file_identity(path) is None
    path.write_text("{}", encoding="utf-8")
    first = paths.file_identity(path)
    assert first is not None and paths.file_identity(path) == first
    path.write_text('{"a": 1}', encoding="utf-8")  # rewritten in place, another size
    second = paths.file_identity(path)
    assert second not in (None, first)
    other = tmp_path / "g.json"
    other.write_text('{"b": 2}', encoding="utf-8")  # the same size, replacing it whole
    other.replace(path)
    assert paths.file_identity(path) not in (None, first, second)
