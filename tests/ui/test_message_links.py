"""Links in the chat view: a code block's Copy link copies exactly that block's code
(the click is hit-tested against the painted document), the cursor is a pointing hand
over links, and the reply being written stays plain text. In the real window on
FakeInferenceService (a test of the view's behaviour)."""

from __future__ import annotations

from dataclasses import replace

from fake_inference import FakeReply
from link_probe import WAIT_MS, send_and_wait, view_point
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.ui.message_links import anchor_at
from llamadesk.ui.message_view import MessageDelegate

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
