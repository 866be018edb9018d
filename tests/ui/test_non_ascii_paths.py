"""The window with its data folder, the bundled model and an imported model under a folder
named ``Željko Дмитрий 田中 folder``: it loads the models, chats, searches and exports
there (tests/e2e/test_non_ascii_paths.py does the same for the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf_tools import tiny_model
from non_ascii import FOLDER, odd_folder, resources_under
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core import bundled
from llamadesk.core.conversation import SamplingParams
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.ui.main_window import MainWindow

WAIT_MS = 180_000
PARAMS = SamplingParams(max_tokens=12, n_ctx=1024, temperature=0.7, seed=5)


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           real_window: WindowFactory) -> MainWindow:
    folder = odd_folder(tmp_path)
    monkeypatch.setenv("LLAMADESK_HOME", str(folder / "home"))
    monkeypatch.setenv("LLAMADESK_RESOURCES", str(resources_under(folder)))
    return real_window(settings=AppSettings(defaults=PARAMS,
                                            hardware=HardwareSettings(n_threads=1)), show=False)


def type_and_send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    # QTest types ASCII keys only: the text is put in place, the Enter key is real.
    window.chat.composer.setPlainText(text)
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


def test_the_window_works_under_a_non_ascii_folder(qtbot: QtBot, window: MainWindow,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / FOLDER
    assert FOLDER in str(bundled.locate().path) and FOLDER in str(window.ctx.paths.database)
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS) as loaded:
        window.show()
    assert FOLDER in loaded.args[0].path

    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as replied:
        type_and_send(qtbot, window, "Привет, Željko! 田中さん、こんにちは。")
    assert replied.args[1] is not None and replied.args[1].content

    window.sidebar.search_box.setText("Željko")
    qtbot.waitUntil(lambda: window.sidebar.search_results.rowCount() >= 1, timeout=5_000)
    hits = [str(window.sidebar.search_results.index(i).data())
            for i in range(window.sidebar.search_results.rowCount())]
    assert any("田中さん" in hit for hit in hits), hits

    target = folder / "Экспорт 田中.md"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *_a, **_k: (str(target), "Markdown (*.md)"))
    window.export_current()
    assert "田中さん" in target.read_text(encoding="utf-8")

    # An imported model from the same folder loads and answers too.
    source = tiny_model(folder / "мои модели" / "Дмитрий's tiny model.gguf")
    entry = window.ctx.registry.import_file(source, link=True)
    window.refresh_models()
    index = window.chat.model_picker.findData(entry.id)
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS) as switched:
        window.chat.model_picker.setCurrentIndex(index)
        window.chat.model_picker.activated.emit(index)
    assert switched.args[0].path == str(source.resolve())
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as replied:
        type_and_send(qtbot, window, "Ещё раз?")
    assert replied.args[1] is not None and replied.args[1].model_id == entry.id
