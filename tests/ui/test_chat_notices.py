"""Sentences kept for a chat that is not on screen (ui/chat_notices.py), with a real store
and a real banner."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.ui.banner import ErrorBanner
from llamadesk.ui.chat_notices import ChatNotices

REFUSED = "The disk did not confirm the message was written."
FAILED = "The reply failed: the model crashed"


def _notices(qtbot: QtBot, store: ConversationStore) -> tuple[ChatNotices, ErrorBanner,
                                                              list[str]]:
    banner = ErrorBanner()
    qtbot.addWidget(banner)
    notes: list[str] = []
    return ChatNotices(banner, store, notes.append), banner, notes


def test_a_later_failure_does_not_replace_the_warning_about_the_disk(
        qtbot: QtBot, store: ConversationStore) -> None:
    notices, banner, notes = _notices(qtbot, store)
    hidden = store.create_conversation("Groceries").id
    shown = store.create_conversation("Other").id
    notices.say(hidden, shown, REFUSED)
    notices.say(hidden, shown, FAILED)
    notices.say(hidden, shown, FAILED)  # said once however often it comes
    assert not banner.isVisible()
    assert notes and all("“Groceries”" in note for note in notes)
    notices.opened(hidden)
    assert banner.label.text() == f"{REFUSED}\n{FAILED}"
    banner.hide()
    notices.opened(hidden)
    assert not banner.isVisible(), "said once, when the chat was opened"


def test_a_chat_deleted_before_its_failure_keeps_nothing(
        qtbot: QtBot, store: ConversationStore) -> None:
    notices, banner, notes = _notices(qtbot, store)
    gone = store.create_conversation("Gone").id
    shown = store.create_conversation("Other").id
    store.delete_conversation(gone)
    notices.say(gone, shown, FAILED)
    assert notes == [], "no pointer to a chat that cannot be opened"
    notices.opened(gone)
    assert not banner.isVisible()


def test_a_store_that_cannot_be_read_still_keeps_the_sentence(
        qtbot: QtBot, store: ConversationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    notices, banner, notes = _notices(qtbot, store)
    hidden = store.create_conversation("Hidden").id

    def refused(_conversation_id: int) -> None:
        raise StoreError("disk I/O error")

    monkeypatch.setattr(store, "get_conversation", refused)
    notices.say(hidden, None, REFUSED)
    assert notes == ["Something needs your attention in another chat: open it to read what."]
    notices.opened(hidden)
    assert banner.label.text() == REFUSED


def test_on_screen_a_failure_is_said_beside_the_disks_warning_not_over_it(
        qtbot: QtBot, store: ConversationStore) -> None:
    notices, banner, notes = _notices(qtbot, store)
    shown = store.create_conversation("Shown").id
    banner.show()  # as in the window, where the banner's parent is on screen
    notices.say(shown, shown, REFUSED)
    notices.say(shown, shown, FAILED)
    notices.say(shown, shown, FAILED)
    assert banner.label.text() == f"{REFUSED}\n{FAILED}"
    assert notes == [], "nothing for the status bar: the chat is on screen"
    banner.hide()  # dismissed: the next sentence stands alone
    notices.say(shown, shown, FAILED)
    assert banner.label.text() == FAILED
