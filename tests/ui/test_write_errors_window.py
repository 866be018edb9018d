"""One error policy for the window's writes (``ui.user_errors``): a settings file that
cannot be written, or a chat database that refuses writes, is reported in words in the
banner; no slot raises (so nothing reaches the crash dialog) and nothing already saved is
lost. Real SQLite (``PRAGMA query_only`` makes the store's own connection refuse writes,
as a read-only file does) and a real settings file; FakeInferenceService only, as no
reply is written here."""

from __future__ import annotations

import json

from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.store import ConversationStore


def _refuse_writes(store: ConversationStore, refuse: bool = True) -> None:
    store._db.execute(f"PRAGMA query_only = {int(refuse)}")  # the store's own connection


def test_a_settings_save_that_fails_in_the_local_api_is_reported(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    path = window.ctx.paths.settings_file
    window.ctx.settings.update(window.ctx.settings.current)  # nothing changes: no write
    before = path.read_text(encoding="utf-8") if path.exists() else None
    path.with_suffix(".tmp").mkdir(parents=True)  # the atomic write's temp file cannot be made
    keep = not window.ctx.settings.current.local_api.store_conversations

    with qtbot.waitSignal(window.local_api.notice) as notice:
        window.local_api.set_keep_chats(keep)
    assert "could not be saved" in notice.args[0] and str(path) in notice.args[0]
    assert window.chat.banner.isVisible()
    assert "could not be saved" in window.chat.banner.label.text()
    assert window.ctx.settings.current.local_api.store_conversations is keep, (
        "the change applies to this session")
    after = path.read_text(encoding="utf-8") if path.exists() else None
    assert after == before, "the file on disk is the one saved before"
    if after is not None:
        json.loads(after)


def test_a_database_that_refuses_writes_is_reported_by_the_window(
        fake_window: WindowFactory) -> None:
    window = fake_window()
    first = window.current_id
    assert first is not None
    window.new_conversation()
    second = window.current_id
    assert second is not None and second != first
    stored = [c.id for c in window.store.list_conversations()]

    _refuse_writes(window.store)
    window.delete_conversation(second)
    banner = window.chat.banner
    assert banner.isVisible() and "read-only" in banner.label.text()
    assert window.store.get_conversation(second) is not None, "nothing is lost"
    assert window.sidebar.conversations.row_of(second) is not None, "and it stays listed"
    assert window.current_id == second

    banner.hide()
    window.new_conversation()
    assert banner.isVisible() and "cannot be written" in banner.label.text()
    assert window.current_id == second, "the chat on screen stays"

    banner.hide()
    window.open_conversation(first)  # shown, though the database cannot remember it
    assert window.current_id == first and banner.isVisible()
    assert [c.id for c in window.store.list_conversations()] == stored

    _refuse_writes(window.store, False)
    window.delete_conversation(second)  # once writes are allowed again, it works
    assert window.store.get_conversation(second) is None
