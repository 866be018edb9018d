"""The settings service: the one place that changes and saves the app's settings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.settings import AppSettings, load_settings, with_hardware
from llamadesk.services.settings import SettingsSaveError, SettingsService


def test_an_update_is_saved_and_announced(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "config" / "settings.json"
    service = SettingsService.load(path)
    assert service.current == AppSettings(), "no file yet: the defaults"
    changed = with_hardware(service.current, n_threads=3)
    with qtbot.waitSignal(service.changed) as announced:
        service.update(changed)
    assert announced.args == [changed]
    assert service.current == changed
    assert load_settings(path) == changed, "written to disk"
    assert SettingsService.load(path).current == changed


def test_the_default_model_is_remembered(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    service = SettingsService(path)
    service.set_default_model("mistral-7b-q4_k_m")
    assert json.loads(path.read_text())["model_id"] == "mistral-7b-q4_k_m"
    service.set_default_model(None)
    assert load_settings(path).model_id is None


def test_an_unchanged_update_writes_and_announces_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    service = SettingsService(path)
    with qtbot.assertNotEmitted(service.changed):
        service.update(AppSettings())
    assert not path.exists()


def test_a_failed_save_still_applies_and_says_where_and_why(qtbot: QtBot,
                                                            tmp_path: Path) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the folder should be")
    path = blocker / "settings.json"
    service = SettingsService(path)
    wanted = replace(AppSettings(), default_system_prompt="Be brief.")
    with qtbot.waitSignal(service.changed), pytest.raises(SettingsSaveError) as failed:
        service.update(wanted)
    message = str(failed.value)
    assert str(path) in message and "could not be saved" in message
    assert "Traceback" not in message
    assert service.current == wanted, "the running app uses the new settings anyway"
