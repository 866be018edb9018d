"""The window's chat answers from documents: collections switched on per chat, files
attached to one question, sources kept with the reply (real model, real store)."""

from __future__ import annotations

import subprocess
import sys
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


LAZY_PROBE = """
import sys
from pathlib import Path
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat_documents import ChatDocuments

folder = Path(sys.argv[1])
store = ConversationStore(folder / "chats.db")
docs = ChatDocuments(store)
chat = store.create_conversation()
docs.passages(chat.id, "What pressure for the boiler?", 1024, 64)
print("attach imported without files:", "llamadesk.core.documents.attach" in sys.modules)
note = folder / "note.txt"
note.write_text("The boiler pressure must stay under 2.5 bar.", encoding="utf-8")
docs.attach(chat.id, [note])
found = docs.passages(chat.id, "What pressure for the boiler?", 1024, 64)
print("passages with a file:", [p.where for p in found])
store.close()
"""


def test_file_reading_is_imported_only_when_files_are_attached(tmp_path: Path) -> None:
    """A chat without attachments leaves the file readers (HTML, PDF, ...) unimported;
    the first attached file imports them and is read (a fresh interpreter: the test
    process has imported everything already)."""
    result = subprocess.run([sys.executable, "-c", LAZY_PROBE, str(tmp_path)],
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.splitlines() == ["attach imported without files: False",
                                          "passages with a file: ['note.txt']"]
