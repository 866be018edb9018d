"""The message composer: Enter sends, Shift+Enter starts a new line."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QSizePolicy, QWidget

from llamadesk.ui.transfer import dropped_paths

MAX_LINES = 8


class Composer(QPlainTextEdit):
    """A text box that grows with its text up to a few lines.

    Signals:
        submitted(str): the user pressed Enter with some text.
    """

    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Message the model…  (Enter to send, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setAccessibleName("Message")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().contentsChanged.connect(self.updateGeometry)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter sends; Shift+Enter (or Ctrl+Enter) inserts a newline."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            mods = event.modifiers()
            if mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier):
                self.insertPlainText("\n")
                return
            self.submit()
            return
        super().keyPressEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Exported chats and backup folders are not text to type: the window imports
        them (the ignored drag goes on to it)."""
        if dropped_paths(event.mimeData()):
            event.ignore()
            return
        super().dragEnterEvent(event)

    def submit(self) -> None:
        """Emit the text if it is not blank."""
        text = self.toPlainText()
        if text.strip():
            self.submitted.emit(text)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def sizeHint(self) -> QSize:
        # Visual lines (wrapped text counts), at least two so the box looks like one.
        layout = self.document().documentLayout()
        lines = max(2, min(int(layout.documentSize().height()), MAX_LINES))
        line_h = self.fontMetrics().lineSpacing()
        margins = self.contentsMargins()
        height = lines * line_h + 2 * int(self.document().documentMargin()) \
            + margins.top() + margins.bottom() + 4
        return QSize(super().sizeHint().width(), height)
