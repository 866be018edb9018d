"""Preferences and About."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from llamadesk.core.paths import app_paths
from llamadesk.core.settings import AppSettings, with_hardware
from llamadesk.ui.dialogs import AboutDialog, PreferencesDialog


def test_preferences_show_the_settings_and_return_the_edits(qtbot: QtBot) -> None:
    settings = with_hardware(AppSettings(), n_threads=3, gpu_layers="12", flash_attn=True)
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.threads.value() == 3
    assert dialog.gpu_mode.currentData() == "n" and dialog.gpu_layers.value() == 12
    assert dialog.flash_attn.isChecked() and dialog.compact_cache.isChecked()
    dialog.threads.setValue(5)
    dialog.compact_cache.setChecked(False)
    dialog.n_ctx.setValue(1024)
    edited = dialog.result_settings()
    assert edited.hardware.n_threads == 5 and edited.hardware.kv_cache_type == "f16"
    assert edited.defaults.n_ctx == 1024
    assert edited.default_system_prompt == settings.default_system_prompt


def test_about_lists_the_folders_for_a_bug_report(qtbot: QtBot, home: Path) -> None:
    paths = app_paths().ensure()
    dialog = AboutDialog(paths, "none loaded")
    qtbot.addWidget(dialog)
    text = dialog.details.toPlainText()
    assert f"Logs: {paths.log_dir}" in text and "Model: none loaded" in text
