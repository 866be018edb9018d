"""The window when the database refuses writes (it is full): sending, searching and
saving a chat's settings each say why in the banner, no slot raises, the typed message
stays in the box, and nothing stored before is lost (real services and SQLite; the
full database is SQLite's own, through ``PRAGMA max_page_count``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.resolver import make_resolver
from llamadesk.ui.main_window import AppContext, MainWindow

LONG = "Remember these: " + " ".join(f"w{i}" for i in range(10_000))


@pytest.fixture
def window(qtbot: QtBot, bundled_model_path: Path) -> Iterator[MainWindow]:
    paths = app_paths().ensure()
    settings = AppSettings(defaults=SamplingParams(max_tokens=8, n_ctx=1024),
                           hardware=HardwareSettings(n_threads=1))
    store = ConversationStore(paths.database)
    registry = ModelRegistry(paths)
    inference = InferenceService()
    controller = ChatController(store, inference, make_resolver(lambda: settings, registry))
    win = MainWindow(AppContext(paths, store, inference, controller, controller.resolve_model,
                                settings, registry))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.controller.stop()
    win.shutdown_services()
    inference.shutdown()
    store.close()


def test_a_full_database_is_reported_and_loses_nothing(qtbot: QtBot,
                                                       window: MainWindow) -> None:
    cid = window.current_id
    assert cid is not None
    window.store.add_message(cid, Role.USER, "An earlier question about lighthouses")
    window.open_conversation(cid)
    before = window.store.messages(cid)
    db = window.store._db  # the store's own connection: max_page_count holds per connection
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")

    window.composer.setPlainText(LONG)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)
    assert window.banner.isVisible() and "is full" in window.banner.label.text()
    assert window.composer.toPlainText() == LONG, "the text stays to send again"
    assert not window.controller.busy and window.send_button.text() == "Send"

    window.banner.hide()
    window.settings_panel.system_prompt.setPlainText("Answer like a pirate. " * 2_000)
    window.settings_panel.flush()
    assert window.banner.isVisible()
    assert window.banner.label.text().startswith("The chat's settings were not saved.")
    conversation = window.store.get_conversation(cid)
    assert conversation is not None and conversation.system_prompt != "Answer like a pirate. "

    window.store._db.execute("DROP TABLE messages_fts")  # a damaged search index
    window.banner.hide()
    window.search_box.setText("lighthouses")
    window.search_box.returnPressed.emit()
    assert window.banner.isVisible() and "Searching the chats failed" in window.banner.label.text()
    assert window.sidebar_stack.currentWidget() is window.conversation_view

    assert window.store.messages(cid) == before
    con = sqlite3.connect(window.store.path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
