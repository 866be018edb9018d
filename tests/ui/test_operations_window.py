"""The window's writes as operations (``ui/operations.py``), through a real window on a
real (encrypted) SQLite store and a real settings file: a write made in one view reaches
the others through the one change event; a refused write is a banner and loses nothing;
a write that stalls in the kernel runs off the GUI thread. FakeInferenceService only, as
no reply is generated here."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import Role
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.operations import Changes

WAIT_MS = 10_000


def record_changes(window: MainWindow) -> list[tuple[Changes, object]]:
    seen: list[tuple[Changes, object]] = []
    window.ctx.operations.changed.connect(lambda changes, who: seen.append((changes, who)))
    return seen


def rename_in_sidebar(window: MainWindow, title: str) -> bool:
    """What the sidebar's in-place editor does when the user presses Enter."""
    model = window.sidebar.conversations
    index = model.index(model.row_of(window.current_id) or 0)
    return model.setData(index, title)


def test_a_rename_in_the_sidebar_retitles_the_chat_on_screen(fake_window: WindowFactory) -> None:
    window = fake_window()
    seen = record_changes(window)
    assert rename_in_sidebar(window, "Trip to Lisbon")
    cid = window.current_id
    assert cid is not None
    assert window.chat.title_label.text() == "Trip to Lisbon", "the pane heard of it"
    assert window.store.get_conversation(cid).title == "Trip to Lisbon"
    assert seen == [(Changes(chats=frozenset({cid})), window.sidebar.conversations)], (
        "one change event, naming the sidebar's list as the one who made it")


def test_a_version_chosen_in_the_chat_moves_nothing_but_a_new_chat_goes_to_the_top(
        fake_window: WindowFactory) -> None:
    window = fake_window()
    store = window.store
    older = store.create_conversation("Older chat")
    question = store.add_message(older.id, Role.USER, "Name a colour.")
    store.add_message(older.id, Role.ASSISTANT, "Blue.", parent_id=question.id)
    second = store.add_message(older.id, Role.ASSISTANT, "Green.", parent_id=question.id)
    window.ctx.operations.announce(Changes(chats=frozenset({older.id})))
    window.new_conversation()  # a window write: the list shows it at the top, selected
    newest = window.current_id
    assert window.sidebar.first_conversation().id == newest
    window.select_conversation(older.id)
    assert window.chat.message_view.model().rowCount() == 2
    assert window.chat.messages.row_at(1).content == "Green."

    seen = record_changes(window)
    window.chat.show_version(second.id, -1)  # the "‹" of a reply's versions
    assert window.chat.messages.row_at(1).content == "Blue."
    assert store.get_conversation(older.id).current_leaf_id != second.id
    assert seen == [(Changes(messages=frozenset({older.id})), window.chat)]
    assert window.sidebar.first_conversation().id == newest, (
        "another branch shown is not new activity: the list keeps its order")


def test_a_chat_deleted_from_the_window_leaves_the_list_and_the_pane(
        fake_window: WindowFactory) -> None:
    window = fake_window()
    first = window.current_id
    window.new_conversation()
    second = window.current_id
    assert second != first
    window.delete_conversation(second)
    assert window.sidebar.conversations.row_of(second) is None
    assert window.current_id == first
    assert window.chat.title_label.text() == window.store.get_conversation(first).title


def test_a_refused_rename_is_a_banner_and_loses_nothing(fake_window: WindowFactory) -> None:
    window = fake_window()
    assert rename_in_sidebar(window, "Kept title")
    window.store._db.execute("PRAGMA query_only = 1")  # the store's own connection refuses
    try:
        assert not rename_in_sidebar(window, "Never stored")
    finally:
        window.store._db.execute("PRAGMA query_only = 0")
    cid = window.current_id
    assert window.chat.banner.isVisible()
    assert "read-only" in window.chat.banner.label.text()
    assert window.store.get_conversation(cid).title == "Kept title"
    model = window.sidebar.conversations
    assert model.conversation_at(model.row_of(cid)).title == "Kept title"
    assert window.chat.title_label.text() == "Kept title"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_settings_save_that_stalls_does_not_hold_the_gui_thread(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings file's temporary copy is a named pipe: writing it blocks in the kernel
    until something reads the other end, as a write to a stalled network folder does.
    While it is blocked, the window keeps answering (a timer fires, a rename goes
    through); once the pipe is read, the save finishes and is announced."""
    from llamadesk.ui import preferences

    window = fake_window()
    settings_file: Path = window.ctx.paths.settings_file
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(settings_file.with_suffix(".tmp"))
    wanted = replace(window.ctx.settings.current,
                     default_system_prompt="Answer in French.")
    monkeypatch.setattr(preferences.PreferencesDialog, "exec", lambda self: 1)
    monkeypatch.setattr(preferences.PreferencesDialog, "result_settings", lambda self: wanted)
    seen = record_changes(window)
    # The other end is opened when the test says so, or after a while regardless: a save
    # made on the GUI thread then fails the test instead of hanging it.
    go, written = threading.Event(), []
    reader = threading.Thread(target=lambda: (go.wait(20), written.append(
        settings_file.with_suffix(".tmp").read_bytes())))
    reader.start()

    window.show_preferences()  # returns while the write is stuck in the pipe
    assert window.ctx.operations.in_flight == 1
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=WAIT_MS)
    assert rename_in_sidebar(window, "Renamed meanwhile")
    assert window.chat.title_label.text() == "Renamed meanwhile"
    assert window.ctx.operations.in_flight == 1, "the save is still blocked"
    assert not any(c.settings for c, _who in seen)

    go.set()  # opening the other end lets the write go on
    qtbot.waitUntil(lambda: any(c.settings for c, _who in seen), timeout=WAIT_MS)
    reader.join(WAIT_MS / 1000)
    timer.stop()
    assert window.ctx.operations.in_flight == 0
    assert json.loads(written[0])["default_system_prompt"] == "Answer in French."
    assert window.ctx.settings.current == wanted
    assert not window.chat.banner.isVisible()
