"""The sidebar: search across chats, in the real window on FakeInferenceService."""

from __future__ import annotations

from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import Role


def test_search_across_chats_opens_the_matching_conversation(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    sidebar = window.sidebar
    first = window.current_id
    window.store.add_message(first, Role.USER, "We talked about alpacas and their wool.")
    window.new_conversation()
    second = window.current_id
    window.store.add_message(second, Role.USER, "Something else entirely: lighthouses.")
    assert window.current_id == second

    qtbot.keyClicks(sidebar.search_box, "alpac")
    qtbot.waitUntil(lambda: sidebar.stack.currentWidget() is sidebar.results_view,
                    timeout=5_000)
    assert sidebar.search_results.rowCount() == 1
    hit = sidebar.search_results.index(0)
    assert "alpacas" in hit.data()
    sidebar.results_view.activated.emit(hit)
    assert window.current_id == first
    assert window.chat.messages.row_at(0).content.startswith("We talked about alpacas")

    sidebar.search_box.clear()
    qtbot.waitUntil(lambda: sidebar.stack.currentWidget() is sidebar.list_view,
                    timeout=5_000)


def test_the_new_chat_button_and_the_search_shortcut(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    before = window.current_id
    from PySide6.QtWidgets import QPushButton

    button = next(b for b in window.sidebar.findChildren(QPushButton)
                  if b.text().endswith("New chat"))
    assert "Ctrl+N" in button.toolTip()
    button.click()
    assert window.current_id not in (None, before)
    assert window.sidebar.conversations.rowCount() == 2
    assert window.chat.composer.hasFocus() or not window.isActiveWindow()
    sidebar = window.sidebar
    sidebar.search_box.setText("something")
    qtbot.waitUntil(lambda: sidebar.stack.currentWidget() is sidebar.results_view,
                    timeout=5_000)
    assert sidebar.search_results.rowCount() == 0
    sidebar.focus_search()
    assert sidebar.search_box.selectedText() == "something"
