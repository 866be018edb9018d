"""Links in the chat view: a code block's Copy link copies exactly that block's code
(the click is hit-tested against the painted document), the cursor is a pointing hand
over links, and the reply being written stays plain text. In the real window on
FakeInferenceService (a test of the view's behaviour)."""

from __future__ import annotations

from dataclasses import replace

from fake_inference import FakeReply
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_links import anchor_at
from llamadesk.ui.message_model import MessageRole
from llamadesk.ui.message_view import MessageDelegate

WAIT_MS = 10_000

REPLY = """Two ways:

```python
def greet(name):
    return f"Hello, {name}!"   # two spaces kept
```

and in the shell:

```bash
echo "hello"
echo done
```
"""


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


def test_clicking_copy_copies_exactly_that_blocks_code(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    window.resize(900, 700)
    fake_of(window).script(FakeReply(REPLY, words_per_batch=4))
    send_and_wait(qtbot, window, "Show me hello world twice.")
    view = window.chat.message_view
    QGuiApplication.clipboard().setText("something else")

    second = view_point(window, 1, "copy:1")
    assert anchor_at(view, second)[1] == "copy:1"
    qtbot.mouseMove(view.viewport(), second)
    assert view.viewport().cursor().shape() == Qt.CursorShape.PointingHandCursor
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=second)
    assert QGuiApplication.clipboard().text() == 'echo "hello"\necho done'
    assert window.status.currentMessage() == "Copied 2 lines of code"

    first = view_point(window, 1, "copy:0")
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=first)
    assert QGuiApplication.clipboard().text() == (
        'def greet(name):\n    return f"Hello, {name}!"   # two spaces kept')

    # Away from the links: an arrow, and a click copies nothing.
    QGuiApplication.clipboard().setText("unchanged")
    plain = view.visualRect(window.chat.messages.index(1)).topLeft() + QPoint(40, 30)
    qtbot.mouseMove(view.viewport(), plain)
    assert view.viewport().cursor().shape() == Qt.CursorShape.ArrowCursor
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=plain)
    assert QGuiApplication.clipboard().text() == "unchanged"


def test_the_reply_being_written_stays_plain_text(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window(replace(SHORT, max_tokens=4096))  # long enough to stop mid-way
    fake_of(window).script(FakeReply(REPLY + " more" * 2000, words_per_batch=2))
    qtbot.keyClicks(window.chat.composer, "Go on.")
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
    messages = window.chat.messages
    qtbot.waitUntil(lambda: messages.streaming_row is not None
                    and "echo done" in messages.row_at(messages.streaming_row).content,
                    timeout=WAIT_MS)
    view = window.chat.message_view
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    live = messages.row_at(messages.streaming_row)
    doc = delegate.document(live, view.viewport().width())
    assert "```bash" in doc.toPlainText(), "no Markdown while it streams"
    assert "<a " not in doc.toHtml()
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        window.stop()
    QApplication.processEvents()
    stored = messages.row_at(1)
    assert not stored.streaming
    assert 'href="copy:1"' in delegate.document(stored, view.viewport().width()).toHtml()
