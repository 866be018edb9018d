"""Documents in the window, on FakeInferenceService (a test of the window's behaviour;
the real model's path is in tests/services/test_chat_documents.py): the Attach… button and
dropped files attach to the next message, the Documents menu switches collections on,
and a reply's sources show under it, each link opening its passage."""

from __future__ import annotations

from pathlib import Path

from fake_inference import FakeReply
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QTextDocument
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory, fake_of

from llamadesk.core.documents.quoting import sources
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_links import anchor_at
from llamadesk.ui.message_model import MessageRole
from llamadesk.ui.message_view import MessageDelegate

WAIT_MS = 10_000


# The same probing as tests/ui/test_message_links.py: where a link is painted.
def anchor_point(doc: QTextDocument, href: str) -> QPointF:
    """The middle of the area where the document's layout has the link ``href`` (found
    by probing it on a grid), in the document's coordinates."""
    layout = doc.documentLayout()
    hits = [QPointF(x, y) for y in range(0, int(doc.size().height()), 2)
            for x in range(0, int(doc.textWidth()), 3)
            if layout.anchorAt(QPointF(x, y)) == href]
    assert hits, f"no link to {href} in the document"
    xs, ys = [p.x() for p in hits], [p.y() for p in hits]
    return QPointF((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)


def view_point(window: MainWindow, row: int, href: str) -> QPoint:
    """Where ``href`` is painted in the chat view's viewport."""
    view = window.chat.message_view
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    view.viewport().repaint()  # the delegate notes where it painted each document
    index = window.chat.messages.index(row)
    chat_row = index.data(MessageRole.MESSAGE)
    origin = delegate.text_origin(chat_row)
    assert origin is not None, "the row was painted"
    doc = delegate.document(chat_row, view.viewport().width())
    return (view.visualRect(index).topLeft() + origin
            + anchor_point(doc, href).toPoint())


def send_and_wait(qtbot: QtBot, window: MainWindow, text: str) -> None:
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        qtbot.keyClicks(window.chat.composer, text)
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


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
    [home] = bar.menu.actions()
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
