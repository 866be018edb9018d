"""The sidebar: search across chats, in the real window on FakeInferenceService."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import Role
from llamadesk.ui.operations import chat_changed


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
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)  # focus only exists in it
    before = window.current_id
    button = next(b for b in window.sidebar.findChildren(QPushButton)
                  if b.text().endswith("New chat"))
    window.sidebar.search_box.setFocus()  # elsewhere, so a new chat must move it
    assert window.sidebar.search_box.hasFocus()
    assert "Ctrl+N" in button.toolTip()
    button.click()
    assert window.current_id not in (None, before)
    assert window.sidebar.conversations.rowCount() == 2
    qtbot.waitUntil(window.chat.composer.hasFocus, timeout=5_000)
    sidebar = window.sidebar
    sidebar.search_box.setText("something")
    qtbot.waitUntil(lambda: sidebar.stack.currentWidget() is sidebar.results_view,
                    timeout=5_000)
    assert sidebar.search_results.rowCount() == 0
    sidebar.focus_search()
    assert sidebar.search_box.selectedText() == "something"


def test_a_search_hit_on_another_branch_opens_that_branch_and_shows_the_hit(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    store = window.store
    chat = window.current_id
    question = store.add_message(chat, Role.USER, "Which bird?")
    old = store.add_message(chat, Role.ASSISTANT, "The kingfisher, bright blue.",
                            parent_id=question.id)
    for n in range(70):  # a long follow-up on that branch: the hit is far up
        store.add_message(chat, Role.USER if n % 2 == 0 else Role.ASSISTANT, f"more {n}")
    newer = store.add_message(chat, Role.ASSISTANT, "The heron.", parent_id=question.id)
    window.new_conversation()  # another chat is on screen
    assert [m.id for m in store.messages(chat)] == [question.id, newer.id]

    sidebar = window.sidebar
    qtbot.keyClicks(sidebar.search_box, "kingfisher")
    qtbot.waitUntil(lambda: sidebar.search_results.rowCount() == 1, timeout=5_000)
    sidebar.results_view.activated.emit(sidebar.search_results.index(0))
    assert window.current_id == chat
    assert old.id in [m.id for m in store.messages(chat)], "the hit's branch is on screen"
    view = window.chat.message_view
    selected = view.selected_row()
    assert selected is not None and selected.message_id == old.id, "the hit is selected"
    assert view.visualRect(view.currentIndex()).intersects(view.viewport().rect()), \
        "…and scrolled into view"
    assert selected.alternatives == (1, 2)

    # Opened again while its chat is the one on screen: still shown.
    window.chat.message_view.scroll_to_end()
    store.show_branch(newer.id)
    window.chat.show_conversation(chat)
    sidebar.results_view.activated.emit(sidebar.search_results.index(0))
    assert view.selected_row().message_id == old.id


def test_long_titles_are_elided_not_scrolled_sideways(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    window.resize(1000, 600)
    title = "A very long title " * 12
    window.store.rename_conversation(window.current_id, title)
    window.ctx.operations.announce(chat_changed(window.current_id))
    view = window.sidebar.list_view
    qtbot.waitUntil(lambda: view.viewport().width() > 50, timeout=5_000)
    view.doItemsLayout()
    index = view.model().index(0, 0)
    assert view.fontMetrics().horizontalAdvance(index.data()) > view.viewport().width()
    assert view.visualRect(index).width() <= view.viewport().width()
    assert view.horizontalScrollBar().maximum() == 0
    assert view.textElideMode() == Qt.TextElideMode.ElideRight


def test_the_list_reads_chats_a_page_at_a_time_as_it_scrolls(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    from llamadesk.ui.conversation_list import FETCH_PAGE, ConversationListModel

    window = fake_window()
    total = 2 * FETCH_PAGE + 10
    for i in range(total - 1):
        window.store.create_conversation(f"chat {i}")
    model = ConversationListModel(window.store)
    view = window.sidebar.list_view
    view.setModel(model)
    assert model.rowCount() == FETCH_PAGE
    assert model.conversation_at(0).title == f"chat {total - 2}"  # newest first
    view.scrollToBottom()
    qtbot.waitUntil(lambda: model.rowCount() > FETCH_PAGE, timeout=5_000)
    while model.canFetchMore(model.index(-1)):
        model.fetchMore(model.index(-1))
    assert model.rowCount() == total
    titles = [model.conversation_at(i).title for i in range(total)]
    assert len(set(titles)) == total
    view.setModel(window.sidebar.conversations)
