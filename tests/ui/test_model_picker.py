"""The chat header's model picker, in the real window on FakeInferenceService, with
real (tiny) GGUF files in the registry. Switching models on the real model is tested
in test_main_window.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from tiny_gguf import write_tiny_gguf
from window_fixtures import WindowFactory, fake_of

from llamadesk.core.fit import MemoryBudget
from llamadesk.core.paths import app_paths
from llamadesk.services import resolver

WAIT_MS = 10_000
BUNDLED = "smollm2-135m-instruct-q4_1"


def test_a_model_whose_file_is_gone_fails_clearly(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    copy = write_tiny_gguf(tmp_path / "copy.gguf", seed=3)
    window = fake_window()
    entry = window.ctx.registry.import_file(copy, link=True, name="Vanishing model")
    window.refresh_models()
    window.store.update_conversation(window.current_id, model_id=entry.id)
    copy.unlink()
    window.refresh_models()
    picker = window.chat.model_picker
    assert "file missing" in picker.currentText()
    window.chat.composer.setPlainText("Anyone there?")
    window.chat.composer.submit()
    assert window.chat.banner.isVisible() and "is gone" in window.chat.banner.label.text()
    assert window.store.messages(window.current_id) == []


def test_picking_a_model_that_may_not_fit_asks_first(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    window = fake_window()
    picker = window.chat.model_picker
    entry = window.ctx.registry.import_file(write_tiny_gguf(tmp_path / "big.gguf", seed=4),
                                            link=True, name="Too big")
    window.refresh_models()
    tiny = MemoryBudget(total_ram=1024, available_ram=1024)
    # The memory measured now, as the resolver's fit estimate reads it: a small machine.
    monkeypatch.setattr(resolver, "memory_budget", lambda: tiny)
    asked: list[str] = []

    def answer(button: object) -> object:
        def question(_parent: object, title: str, text: str, *a: object) -> object:
            asked.append(text)
            return button
        return question

    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    index = picker.findData(entry.id)
    picker.setCurrentIndex(index)
    picker.activated.emit(index)
    assert asked and asked[0].startswith("Too big: ")
    assert window.store.get_conversation(window.current_id).model_id is None
    assert picker.currentData() == BUNDLED, "the picker goes back to the chat's model"

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS,
                          check_params_cb=lambda info: info.model_id == entry.id) as loaded:
        picker.setCurrentIndex(index)
        picker.activated.emit(index)
    assert loaded.args[0].model_id == entry.id
    assert window.store.get_conversation(window.current_id).model_id == entry.id
    assert window.ctx.settings.current.model_id == entry.id


def test_a_choice_that_cannot_be_saved_is_used_and_the_banner_says_so(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    window = fake_window()
    picker = window.chat.model_picker
    entry = window.ctx.registry.import_file(write_tiny_gguf(tmp_path / "m.gguf", seed=5),
                                            link=True, name="Other")
    window.refresh_models()
    config = app_paths().config_dir
    shutil.rmtree(config)
    config.write_text("a file where the config folder should be")
    index = picker.findData(entry.id)
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS,
                          check_params_cb=lambda info: info.model_id == entry.id):
        picker.setCurrentIndex(index)
        picker.activated.emit(index)
    assert window.store.get_conversation(window.current_id).model_id == entry.id
    assert window.ctx.settings.current.model_id == entry.id
    assert "could not be saved" in window.chat.banner.label.text()
    assert fake_of(window).loads[-1].model_id == entry.id
