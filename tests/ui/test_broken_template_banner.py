"""A model whose chat template breaks while rendering: the window says so in its banner
("This model's chat template is broken"), once, and the chat goes on with the fallback
format (real services, the bundled model with a hanging template)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf_tools import with_metadata
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.ui.main_window import MainWindow

WAIT_MS = 180_000
HANGS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture
def window(real_window: WindowFactory, tmp_path: Path, bundled_model_path: Path) -> MainWindow:
    paths = app_paths().ensure()
    registry = ModelRegistry(paths)
    hanging = with_metadata(bundled_model_path, tmp_path / "hanging-template.gguf",
                            {"tokenizer.chat_template": HANGS})
    entry = registry.import_file(hanging, link=True)
    settings = AppSettings(defaults=SamplingParams(max_tokens=8, n_ctx=1024, seed=3),
                           hardware=HardwareSettings(n_threads=1), model_id=entry.id)
    return real_window(settings=settings, show=False)


def test_the_banner_says_the_template_broke_and_the_chat_goes_on(
        qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS):
        window.show()
    assert not window.chat.banner.isVisible(), "the template compiles: nothing to say yet"
    def send(text: str) -> None:
        with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
            qtbot.keyClicks(window.chat.composer, text)
            qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
        assert done.args[1] is not None and done.args[1].content  # answered all the same

    send("Hello there")
    assert window.chat.banner.isVisible()
    shown = window.chat.banner.label.text()
    assert shown.startswith("This model's chat template is broken")
    assert "ran past its budget" in shown and "using the chatml format instead" in shown
    send("And again")
    assert not window.chat.banner.isVisible(), "warned once, not at every message"
    assert window.inference.model_info is not None
    assert window.inference.model_info.template_name == "chatml"


def test_the_banner_offers_another_chat_format_and_the_next_reply_uses_it(
        qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS):
        window.show()
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        qtbot.keyClicks(window.chat.composer, "Hello there")
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
    banner = window.chat.banner
    assert banner.isVisible() and banner.action_button.isVisible()
    assert banner.action_button.text() == "Choose chat format…"
    offered: list[list[str]] = []

    def pick(_parent: object, _title: str, _label: str, items: list[str], current: int,
             _editable: bool) -> tuple[str, bool]:
        offered.append(items)
        assert items[current] == "chatml", "the format in use is preselected"
        return "zephyr", True

    monkeypatch.setattr(QInputDialog, "getItem", pick)
    qtbot.mouseClick(banner.action_button, Qt.MouseButton.LeftButton)
    assert offered and "zephyr" in offered[0] and "llama-2" in offered[0]
    model_id = window.inference.model_info.model_id if window.inference.model_info else ""
    assert window.ctx.registry.get(model_id).chat_format == "zephyr"  # type: ignore[union-attr]

    # The next reply reloads the model with the chosen format.
    with (qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS),
          qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS)):
        qtbot.keyClicks(window.chat.composer, "And again")
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
    assert window.inference.model_info is not None
    assert window.inference.model_info.template_name == "zephyr"
