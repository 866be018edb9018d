"""Where a link is painted in the chat view, found by probing the row's document, and a
message sent through the composer; shared by the window tests that click links."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QTextDocument
from pytestqt.qtbot import QtBot

from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_model import MessageRole
from llamadesk.ui.message_view import MessageDelegate

WAIT_MS = 10_000


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
