"""The window's chat answers from documents: collections switched on per chat, files
attached to one question, sources kept with the reply (real model, real store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_files import write_pdf
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.documents.quoting import sources
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.resolver import make_resolver

WAIT_MS = 180_000
PARAMS = SamplingParams(max_tokens=16, n_ctx=1024, seed=2)


@pytest.fixture
def controller(store: ConversationStore, qtbot: QtBot,
               bundled_model_path: Path) -> Iterator[ChatController]:
    inference = InferenceService()
    settings = AppSettings(defaults=PARAMS)
    yield ChatController(store, inference, make_resolver(lambda: settings))
    inference.shutdown()


def test_collections_and_attachments_reach_the_reply(store: ConversationStore,
                                                     controller: ChatController,
                                                     qtbot: QtBot, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "tax.pdf", ["The tax refund for 2025 was 1,234 euros."])
    controller.documents.index.add("Home", [docs])
    controller.documents.index.update("Home")
    chat = store.create_conversation(params=PARAMS)
    other = store.create_conversation(params=PARAMS)
    controller.documents.set_collections(chat.id, ["Home", "Gone"])
    assert controller.documents.collections(chat.id) == ["Home"], "unknown names left out"
    assert controller.documents.collections(other.id) == []

    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.send(chat.id, "What was the tax refund?")
    reply = done.args[1]
    assert [p.where for p in sources(store, reply.id)] == ["tax.pdf p. 1"]

    note = tmp_path / "note.txt"
    note.write_text("The boiler pressure must stay under 2.5 bar.")
    controller.documents.attach(chat.id, [note])
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.send(chat.id, "What pressure for the boiler?")
    assert [p.where for p in sources(store, done.args[1].id)] == ["note.txt"]
    assert controller.documents.attached(chat.id) == [], "an attachment is for one question"

    controller.documents.set_collections(chat.id, [])
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.send(chat.id, "And the tax refund?")
    assert sources(store, done.args[1].id) == [], "switched off: no documents"
