"""Preferences: hardware, what new chats start with, and appearance."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.presets import preset_book
from llamadesk.core.settings import AppearanceSettings, AppSettings, with_hardware
from llamadesk.ui.preferences import NO_DEFAULT_PRESET, PreferencesDialog


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
    assert edited.appearance == settings.appearance


def test_new_chat_defaults_and_appearance_are_editable(qtbot: QtBot, tmp_path: Path) -> None:
    book = preset_book(tmp_path)
    book.set_default("Creative")
    settings = AppSettings(defaults=SamplingParams(temperature=0.3, seed=5),
                           default_system_prompt="Be kind.",
                           appearance=AppearanceSettings("dark", 13))
    dialog = PreferencesDialog(settings, presets=book)
    qtbot.addWidget(dialog)
    assert dialog.default_preset_box.currentText() == "Creative"
    assert dialog.default_preset_box.itemText(0) == NO_DEFAULT_PRESET
    assert dialog.system_prompt.toPlainText() == "Be kind."
    assert dialog.sampling.params() == SamplingParams(temperature=0.3, seed=5)
    assert dialog.theme.currentData() == "dark" and dialog.font_size.value() == 13

    dialog.system_prompt.setPlainText("Be very kind.")
    dialog.sampling.top_k.setValue(12)
    dialog.theme.setCurrentIndex(dialog.theme.findData("system"))
    dialog.font_size.setValue(0)
    dialog.default_preset_box.setCurrentIndex(0)
    edited = dialog.result_settings()
    assert edited.default_system_prompt == "Be very kind."
    assert edited.defaults == SamplingParams(temperature=0.3, seed=5, top_k=12)
    assert edited.appearance == AppearanceSettings("system", 0)
    assert dialog.default_preset() is None
    assert book.default_name == "Creative", "the window applies the choice on OK"
