"""Documents in the window, on FakeInferenceService (a test of the window's behaviour;
the real model's path is in tests/services/test_chat_documents.py): the Attach… button and
dropped files attach to the next message, the Documents menu switches collections on,
and a reply's sources show under it, each link opening its passage."""

from __future__ import annotations

from pathlib import Path

from fake_inference import FakeReply
from link_probe import send_and_wait, view_point
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory, fake_of

from llamadesk.core.documents.quoting import sources
from llamadesk.ui.message_links import anchor_at


def test_attach_switch_collections_and_open_sources(qtbot: QtBot, fake_window: WindowFactory,
                                                    tmp_path: Path) -> None:
    window = fake_window()
    window.resize(900, 700)
    chat = window.chat
    bar = chat.documents_bar
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Cat\nThe cat is called Miso.\n")
    documents = window.controller.documents
    documents.index.add("Home", [docs])
    documents.index.update("Home")
    window.new_conversation()
    cid = window.current_id

    bar.menu.aboutToShow.emit()
    [update, _line, home] = bar.menu.actions()
    assert update.text() == "Update (pick up changed files)"
    assert home.text() == "Home (1 files)" and not home.isChecked()
    home.setChecked(True)
    assert documents.collections(cid) == ["Home"]
    assert bar.collections_button.text() == "Documents (1)"

    note = tmp_path / "boiler.txt"
    note.write_text("The boiler pressure must stay under 2.5 bar.")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(note))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    # Qt delivers drops only from a real drag; the pane's handler is called as Qt would.
    chat.dropEvent(drop)
    assert bar.attached_label.text() == "Attached: boiler.txt"

    fake_of(window).script(FakeReply("Miso, and under 2.5 bar.", words_per_batch=3))
    send_and_wait(qtbot, window, "What is the cat called, and the boiler pressure?")
    assert bar.attached_label.text() == "", "the attachment went with the message"
    request, _model = fake_of(window).requests[-1]
    prompt = request.history[-1].content
    assert "<documents>" in prompt and "2.5 bar" in prompt and "Miso" in prompt
    reply = window.store.messages(cid)[-1]
    assert [p.where for p in sources(window.store, reply.id)] == ["boiler.txt",
                                                                  "notes.md § Cat"]

    view = chat.message_view
    opened: list[str] = []
    chat.links.source_opened.connect(opened.append)
    point = view_point(window, 1, "source:2")
    assert anchor_at(view, point)[1] == "source:2"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert opened == ["notes.md § Cat\n\nThe cat is called Miso."]
