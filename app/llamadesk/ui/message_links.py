"""Links inside the chat view's messages: a code block's Copy link, and web links.

The view paints cached documents, so there is no widget under the mouse to click: the
position is hit-tested against the document's layout where the delegate last painted
it (``QAbstractTextDocumentLayout.anchorAt``). The reply being written is plain text
and has no links, so streaming pays nothing for this.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QToolTip

from llamadesk.ui.message_model import ChatRow, MessageRole
from llamadesk.ui.message_view import MessageDelegate, MessageView

#: Links a click may open outside the app; anything else (a file path in an image's
#: link, say) is only shown.
OPEN_SCHEMES = ("http", "https", "mailto")


def anchor_at(view: MessageView, pos: QPoint) -> tuple[ChatRow | None, str]:
    """The message under ``pos`` (viewport coordinates) and the link there ("" if none)."""
    index = view.indexAt(pos)
    row = index.data(MessageRole.MESSAGE) if index.isValid() else None
    delegate = view.itemDelegate()
    if not isinstance(row, ChatRow) or row.streaming or not isinstance(delegate,
                                                                       MessageDelegate):
        return None, ""
    origin = delegate.text_origin(row)
    if origin is None:
        return row, ""
    doc = delegate.document(row, view.viewport().width())
    local = QPointF(pos - view.visualRect(index).topLeft() - origin)
    if not (0 <= local.x() < doc.textWidth() and 0 <= local.y() < doc.size().height()):
        return row, ""
    return row, doc.documentLayout().anchorAt(local)


class MessageLinks(QObject):
    """Watches the chat view's mouse: a pointing hand over links, and a click on one
    activates it (a Copy link copies its block's code exactly).

    Signals:
        copied(str): code was copied to the clipboard; says what, for the status bar.
        source_opened(str): a source under a reply was clicked: its place and passage.
    """

    copied = Signal(str)
    source_opened = Signal(str)

    def __init__(self, view: MessageView) -> None:
        super().__init__(view)
        self._view = view
        self._pressed = ""
        self._viewport = view.viewport()
        self._viewport.setMouseTracking(True)
        self._viewport.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Cursor shape on mouse moves; a link activates when pressed and released on it."""
        # The event first: while the view is destroyed, its viewport still has events.
        if not isinstance(event, QMouseEvent) or watched is not self._viewport:
            return False
        pos = event.position().toPoint()
        kind = event.type()
        if kind == QEvent.Type.MouseMove:
            _row, href = anchor_at(self._view, pos)
            if href:
                self._viewport.setCursor(Qt.CursorShape.PointingHandCursor)
            else:
                self._viewport.unsetCursor()
        elif kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._pressed = anchor_at(self._view, pos)[1]
        elif (kind == QEvent.Type.MouseButtonRelease
              and event.button() == Qt.MouseButton.LeftButton):
            row, href = anchor_at(self._view, pos)
            pressed, self._pressed = self._pressed, ""
            if row is not None and href and href == pressed:
                self.activate(row, href, self._viewport.mapToGlobal(pos))
                return True
        return False

    def activate(self, row: ChatRow, href: str, where: QPoint | None = None) -> None:
        """Do what a link in ``row`` stands for: copy a code block, or open a web link."""
        from llamadesk.ui.markdown import (  # loaded with the first reply
            code_block,
            copy_index,
            source_index,
        )

        source = source_index(href)
        if source is not None:
            if source < len(row.sources):
                passage = row.sources[source]
                text = f"{passage.where}\n\n{passage.text}"
                if where is not None:
                    QToolTip.showText(where, text, self._viewport)
                self.source_opened.emit(text)
            return
        block = copy_index(href)
        if block is not None:
            try:
                code = code_block(row.content, block)
            except IndexError:
                return
            QGuiApplication.clipboard().setText(code)
            lines = code.count("\n") + 1
            if where is not None:
                QToolTip.showText(where, "Copied", self._viewport)
            self.copied.emit(f"Copied {lines} line{'s' if lines != 1 else ''} of code")
            return
        url = QUrl(href)
        if url.scheme().lower() in OPEN_SCHEMES:
            QDesktopServices.openUrl(url)
