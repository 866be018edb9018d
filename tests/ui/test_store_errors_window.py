"""The window when the database refuses writes (it is full): sending, searching and
saving a chat's settings each say why in the banner, no slot raises, the typed message
stays in the box, and nothing stored before is lost (real services and SQLite; the
full database is SQLite's own, through ``PRAGMA max_page_count``)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.db import connect
from llamadesk.core.paths import app_paths
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.core.store_open import store_key
from llamadesk.ui.main_window import MainWindow

LONG = "Remember these: " + " ".join(f"w{i}" for i in range(10_000))


@pytest.fixture
def window(real_window: WindowFactory) -> MainWindow:
    return real_window(settings=AppSettings(defaults=SamplingParams(max_tokens=8, n_ctx=1024),
                                            hardware=HardwareSettings(n_threads=1)))


def test_a_full_database_is_reported_and_loses_nothing(qtbot: QtBot,
                                                       window: MainWindow) -> None:
    cid = window.current_id
    assert cid is not None
    window.store.add_message(cid, Role.USER, "An earlier question about lighthouses")
    window.open_conversation(cid)
    before = window.store.messages(cid)
    db = window.store._db  # the store's own connection: max_page_count holds per connection
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")

    window.chat.composer.setPlainText(LONG)
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
    assert window.chat.banner.isVisible() and "is full" in window.chat.banner.label.text()
    assert window.chat.composer.toPlainText() == LONG, "the text stays to send again"
    assert not window.controller.busy and window.chat.send_button.text() == "Send"

    window.chat.banner.hide()
    window.chat.settings_panel.system_prompt.setPlainText("Answer like a pirate. " * 2_000)
    window.chat.settings_panel.flush()
    assert window.chat.banner.isVisible()
    assert window.chat.banner.label.text().startswith("The chat's settings were not saved.")
    conversation = window.store.get_conversation(cid)
    assert conversation is not None and conversation.system_prompt != "Answer like a pirate. "

    window.store._db.execute("DROP TABLE messages_fts")  # a damaged search index
    window.chat.banner.hide()
    window.sidebar.search_box.setText("lighthouses")
    window.sidebar.search_box.returnPressed.emit()
    banner = window.chat.banner
    assert banner.isVisible() and "Searching the chats failed" in banner.label.text()
    assert window.sidebar.stack.currentWidget() is window.sidebar.list_view

    assert window.store.messages(cid) == before
    con = connect(window.store.path, store_key(app_paths()))  # the encrypted file, as is
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
