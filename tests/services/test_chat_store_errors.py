"""When the database refuses a write during a chat (here: it is full), the controller
reports it through ``reply_failed`` with the store's reason, never as chat text and never
as an exception out of a slot; nothing already stored is lost, and once there is room
the same conversation goes on, through the real model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.db import sqlite
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.resolver import make_resolver

WAIT_MS = 180_000
PARAMS = SamplingParams(max_tokens=8, n_ctx=1024, seed=3, temperature=0.0)
#: Many distinct words: the message and its search index need many new pages.
LONG = "Remember these: " + " ".join(f"w{i}" for i in range(10_000))


@pytest.fixture
def controller(store: ConversationStore, bundled_model_path: Path) -> Iterator[ChatController]:
    inference = InferenceService()
    settings = AppSettings(defaults=PARAMS)
    yield ChatController(store, inference, make_resolver(lambda: settings))
    inference.shutdown()


def _set_max_pages(store: ConversationStore, pages: int | None = None) -> int:
    db = store._db  # the store's own connection: the limit holds per connection
    current = int(db.execute("PRAGMA page_count").fetchone()[0])
    db.execute(f"PRAGMA max_page_count = {pages or current}")
    return current


def test_a_full_database_fails_the_send_readably_and_the_chat_goes_on(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    conversation = store.create_conversation(params=PARAMS)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
        first = controller.send(conversation.id, "Hello there.")
    assert first is not None
    before = store.messages(conversation.id)
    assert [m.role for m in before] == [Role.USER, Role.ASSISTANT]

    pages = _set_max_pages(store)
    failures: list[tuple[int, str]] = []
    controller.reply_failed.connect(lambda cid, reason: failures.append((cid, reason)))
    sent = controller.send(conversation.id, LONG)
    assert sent is None  # the composer keeps the text
    assert len(failures) == 1 and failures[0][0] == conversation.id
    assert "is full" in failures[0][1] and "Nothing already saved was lost" in failures[0][1]
    assert not controller.busy and not controller.generating_in(conversation.id)
    assert store.messages(conversation.id) == before

    _set_max_pages(store, pages * 1_000)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        again = controller.send(conversation.id, "And now?")
    assert again is not None and done.args[1] is not None
    assert len(failures) == 1
    after = store.messages(conversation.id)
    assert after[:2] == before and [m.role for m in after[2:]] == [Role.USER, Role.ASSISTANT]
    con = sqlite.connect(store.path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_a_reply_that_cannot_be_stored_fails_readably(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    conversation = store.create_conversation(params=PARAMS)

    def fill_up(_cid: int) -> None:
        # The question is in; the disk fills while the reply is written.
        _set_max_pages(store)
        store._db.execute("PRAGMA query_only = ON")

    controller.reply_started.connect(fill_up)
    with qtbot.waitSignal(controller.reply_failed, timeout=WAIT_MS) as failed:
        question = controller.send(conversation.id, "Say something.")
    assert question is not None
    assert failed.args[0] == conversation.id
    assert failed.args[1].startswith("The reply was not saved.")
    assert not controller.busy
    store._db.execute("PRAGMA query_only = OFF")
    assert store.messages(conversation.id) == [question]
