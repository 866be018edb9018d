"""Themes and text size: the window follows the system's colour scheme (and its
palette) unless told otherwise, switches live, and the chat's rendered messages are
rebuilt with the new colours and font. In the real window on FakeInferenceService."""

from __future__ import annotations

import json
from dataclasses import replace

from fake_inference import FakeReply
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory, fake_of

from llamadesk.core.paths import app_paths
from llamadesk.core.settings import AppearanceSettings, AppSettings
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.markdown import DARK, LIGHT
from llamadesk.ui.message_view import MessageDelegate
from llamadesk.ui.theme import dark_palette, is_dark

WAIT_MS = 10_000
CODE_REPLY = "Like this:\n\n```python\nprint('hi')\n```"


def reply_html(window: MainWindow) -> str:
    """The reply's rendered document, as the view's delegate has it now."""
    view = window.chat.message_view
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    return delegate.document(window.chat.messages.row_at(1), view.viewport().width()).toHtml()


def rendered_with(qtbot: QtBot, window: MainWindow, colour: str) -> None:
    """Wait until the reply is rendered with ``colour`` (widgets get a new palette
    through a posted event)."""
    qtbot.waitUntil(lambda: colour in reply_html(window), timeout=WAIT_MS)


def with_code_reply(qtbot: QtBot, window: MainWindow) -> None:
    fake_of(window).script(FakeReply(CODE_REPLY))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        qtbot.keyClicks(window.chat.composer, "Code?")
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


def test_dark_and_light_from_the_view_menu_rebuild_the_rendered_messages(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    app = QApplication.instance()
    assert not is_dark(app.palette()), "offscreen, the platform's palette is light"
    with_code_reply(qtbot, window)
    assert LIGHT.background in reply_html(window) and DARK.background not in reply_html(window)

    window.menu_actions.themes["dark"].trigger()
    assert is_dark(app.palette()) and window.theme.dark
    rendered_with(qtbot, window, DARK.background)  # the cached document was rebuilt
    assert is_dark(window.chat.message_view.palette())
    assert LIGHT.background not in reply_html(window)
    saved = json.loads(app_paths().settings_file.read_text(encoding="utf-8"))
    assert saved["appearance"]["theme"] == "dark"

    window.menu_actions.themes["light"].trigger()
    assert not is_dark(app.palette())
    rendered_with(qtbot, window, LIGHT.background)
    assert window.menu_actions.themes["light"].isChecked()


def test_following_the_system_switches_live_with_its_colour_scheme(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    with_code_reply(qtbot, window)
    app = QApplication.instance()
    hints = app.styleHints()
    assert window.ctx.settings.current.appearance.theme == "system"
    # What Qt emits when the user switches the operating system to dark (offscreen
    # there is no system to switch, so the notification is sent as Qt would send it).
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert is_dark(app.palette()) and window.theme.dark
    rendered_with(qtbot, window, DARK.background)
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not is_dark(app.palette())
    rendered_with(qtbot, window, LIGHT.background)
    # A manual choice wins over the system's.
    window.theme.set_theme("light")
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert not is_dark(app.palette())


def test_a_palette_change_alone_rebuilds_the_rendered_messages(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    # Some desktops switch by handing Qt a new palette, without a colour scheme.
    window = fake_window()
    with_code_reply(qtbot, window)
    QApplication.instance().setPalette(dark_palette())
    rendered_with(qtbot, window, DARK.background)


def test_text_size_shortcuts_apply_to_the_chat_at_once_and_are_saved(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    with_code_reply(qtbot, window)
    view, composer = window.chat.message_view, window.chat.composer
    system_size = QApplication.instance().font().pointSize()
    actions = window.menu_actions
    assert actions.bigger.shortcut().toString() == "Ctrl+="
    assert actions.smaller.shortcut().toString() == "Ctrl+-"
    assert actions.actual_size.shortcut().toString() == "Ctrl+0"

    actions.bigger.trigger()
    actions.bigger.trigger()
    assert window.ctx.settings.current.appearance.font_size == system_size + 2
    assert view.font().pointSize() == system_size + 2
    assert composer.font().pointSize() == system_size + 2
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    doc = delegate.document(window.chat.messages.row_at(1), view.viewport().width())
    assert doc.defaultFont().pointSize() == system_size + 2, "rendered again at the new size"
    saved = json.loads(app_paths().settings_file.read_text(encoding="utf-8"))
    assert saved["appearance"]["font_size"] == system_size + 2

    actions.smaller.trigger()
    assert view.font().pointSize() == system_size + 1
    actions.actual_size.trigger()
    assert window.ctx.settings.current.appearance.font_size == 0
    assert view.font().pointSize() == system_size


def test_a_saved_appearance_applies_when_the_window_opens(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    settings = AppSettings(appearance=AppearanceSettings(theme="dark", font_size=15))
    window = fake_window(settings=replace(settings, defaults=settings.defaults))
    assert is_dark(QApplication.instance().palette())
    assert window.chat.message_view.font().pointSize() == 15
    assert window.menu_actions.themes["dark"].isChecked()
