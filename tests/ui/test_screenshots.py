"""Pictures of the window to look at: light and dark with a highlighted code block, the
Compare view and Preferences, saved into artifacts/screens/ (git-ignored). The test
checks what a picture can show by itself (the dark one is dark, the code block's
colours are there); the rest is for a person to look at."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fake_inference import FakeReply
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QTextCursor
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.core.settings import LocalApiSettings
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.markdown import DARK, LIGHT
from llamadesk.ui.preferences import PreferencesDialog

SCREENS = Path(__file__).resolve().parents[2] / "artifacts" / "screens"
WAIT_MS = 10_000
LONG_ENOUGH = replace(SHORT, max_tokens=512)

REPLY = """Here is a small function, with a `max()` call inline:

```python
def largest(numbers: list[int]) -> int:
    \"\"\"The largest number (the list must not be empty).\"\"\"
    best = numbers[0]
    for n in numbers[1:]:
        if n > best:
            best = n  # a new record
    return best
```

| input | result |
|---|---|
| `[3, 9, 2]` | 9 |
| `[-1]` | -1 |
"""


def save(widget: QWidget, name: str) -> QImage:
    QApplication.processEvents()
    SCREENS.mkdir(parents=True, exist_ok=True)
    image = widget.grab().toImage()
    assert image.save(str(SCREENS / name)), f"could not save {name}"
    return image


def mean_lightness(image: QImage) -> float:
    step = 7
    values = [QColor(image.pixel(x, y)).lightness()
              for x in range(0, image.width(), step) for y in range(0, image.height(), step)]
    return sum(values) / len(values)


def has_colour(image: QImage, colour: str) -> bool:
    wanted = QColor(colour).rgb()
    return any(image.pixel(x, y) == wanted
               for x in range(0, image.width(), 3) for y in range(0, image.height(), 3))


def chat_with_code(qtbot: QtBot, window: MainWindow) -> None:
    fake_of(window).script(FakeReply(REPLY, words_per_batch=6), "A second version: `max()`.")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        qtbot.keyClicks(window.chat.composer, "Write a function that finds the largest number.")
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
    window.chat.message_view.scroll_to_end()


def test_light_and_dark_windows_with_a_code_block(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window(LONG_ENOUGH)
    window.resize(1180, 760)
    chat_with_code(qtbot, window)
    window.chat.settings_button.setChecked(True)

    window.theme.set_theme("light")
    qtbot.waitUntil(lambda: not window.chat.message_view.itemDelegate().dark, timeout=WAIT_MS)
    light = save(window, "window-light.png")
    window.theme.set_theme("dark")
    qtbot.waitUntil(lambda: window.chat.message_view.itemDelegate().dark, timeout=WAIT_MS)
    dark = save(window, "window-dark.png")

    assert mean_lightness(light) > 170 > 90 > mean_lightness(dark)
    assert has_colour(light, LIGHT.background) and not has_colour(light, DARK.background)
    assert has_colour(dark, DARK.background) and not has_colour(dark, LIGHT.background)


def test_the_compare_view_and_preferences(qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window(LONG_ENOUGH)
    chat_with_code(qtbot, window)
    reply = window.store.messages(window.current_id)[-1]
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        window.chat.regenerate(reply.id)
    dialog = window.chat.replies.compare(reply.id)
    assert dialog is not None
    qtbot.waitExposed(dialog)
    save(dialog, "compare.png")
    preferences = PreferencesDialog(window.ctx.settings.current, window, window.ctx.presets)
    qtbot.addWidget(preferences)
    preferences.show()
    qtbot.waitExposed(preferences)
    for n, name in enumerate(("hardware", "new-chats", "appearance")):
        preferences.tabs.setCurrentIndex(n)
        save(preferences, f"preferences-{name}.png")
    assert len(list(SCREENS.glob("preferences-*.png"))) >= 3


def test_the_local_api_tab_light_and_dark(qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    settings = replace(window.ctx.settings.current, local_api=LocalApiSettings(
        require_key=True, allowed_origins=("http://127.0.0.1:5173", "https://app.example"),
        allowed_hosts=("llm.home.arpa",)))
    images = {}
    for theme in ("light", "dark"):
        window.theme.set_theme(theme)
        preferences = PreferencesDialog(settings, window, window.ctx.presets)
        qtbot.addWidget(preferences)
        preferences.tabs.setCurrentWidget(preferences.local_api_page)
        preferences.resize(640, 520)
        preferences.show()
        qtbot.waitExposed(preferences)
        page = preferences.local_api_page
        assert page.require_key.isChecked() and not page.problem.isVisible()
        assert page.origins.toPlainText() == "http://127.0.0.1:5173\nhttps://app.example"
        images[theme] = save(preferences, f"preferences-local-api-{theme}.png")
        page.hosts.moveCursor(QTextCursor.MoveOperation.End)
        qtbot.keyClick(page.hosts, Qt.Key.Key_Return)
        qtbot.keyClicks(page.hosts, "llm.lan:8716")
        assert page.problem.isVisible() and "not a host name" in page.problem.text()
        save(preferences, f"preferences-local-api-{theme}-problem.png")
        preferences.close()
    assert mean_lightness(images["light"]) > 170 > 90 > mean_lightness(images["dark"])
