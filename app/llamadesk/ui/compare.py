"""The Compare view: every version of a reply side by side, one column per version,
with the model that wrote it and how fast; the user keeps one to continue from."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.conversation import FinishReason, Message
from llamadesk.ui.markdown import STYLE_SHEET, code_block, copy_index, to_html
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.theme import is_dark

COLUMN_WIDTH = 360
QUESTION_CHARS = 200


def stats_line(message: Message) -> str:
    """How a version was written: speed, tokens, and why it ended if not naturally."""
    stats = message.stats
    parts = []
    if stats.tokens_per_s:
        parts.append(f"{stats.tokens_per_s:.1f} tokens/s")
    if stats.completion_tokens is not None:
        parts.append(f"{stats.completion_tokens} tokens")
    if stats.prompt_tokens is not None:
        parts.append(f"prompt {stats.prompt_tokens}")
    if stats.ttft_ms is not None:
        parts.append(f"first token {stats.ttft_ms:.0f} ms")
    if stats.finish_reason == FinishReason.STOPPED:
        parts.append("stopped")
    elif stats.finish_reason == FinishReason.LENGTH:
        parts.append("cut at the token limit")
    elif stats.finish_reason == FinishReason.INTERRUPTED:
        parts.append("interrupted")
    return " · ".join(parts) or "no statistics"


class VersionColumn(QFrame):
    """One version: its model, statistics, text, and a button to continue from it."""

    def __init__(self, message: Message, number: int, count: int, on_screen: bool,
                 names: ModelNames, dark: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = message
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(COLUMN_WIDTH)
        model = names.name_of(message.model_id)
        self.model_label = QLabel(f"<b>{html.escape(model)}</b>")
        self.model_label.setTextFormat(Qt.TextFormat.RichText)
        where = " · on screen" if on_screen else ""
        self.stats_label = QLabel(f"Version {number} of {count}{where}\n{stats_line(message)}")
        self.stats_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stats_label.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.text.anchorClicked.connect(self._on_link)
        self.text.document().setDefaultStyleSheet(STYLE_SHEET)
        self.text.setHtml(to_html(message.content, dark))
        self.text.setAccessibleName(f"Version {number} by {model}")
        self.keep_button = QPushButton("Continue with this one")
        self.keep_button.setToolTip(f"Keep version {number} as the conversation's branch "
                                    f"and go on with {model}")
        self.keep_button.setAccessibleName(f"Continue with version {number}")
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addWidget(self.stats_label)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.keep_button)

    def _on_link(self, url: QUrl) -> None:
        # A code block's Copy link copies its code, as in the chat.
        block = copy_index(url.toString())
        if block is not None:
            try:
                QGuiApplication.clipboard().setText(code_block(self.message.content, block))
            except IndexError:
                return


class CompareDialog(QDialog):
    """All versions of one reply, side by side.

    Signals:
        chosen(int): continue the conversation from this version (a message id).
    """

    chosen = Signal(int)

    def __init__(self, question: Message | None, versions: list[Message], on_screen: int | None,
                 names: ModelNames, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare versions")
        dark = is_dark(self.palette())
        self.columns: list[VersionColumn] = []
        row = QWidget()
        columns = QHBoxLayout(row)
        for n, message in enumerate(versions, start=1):
            column = VersionColumn(message, n, len(versions), message.id == on_screen,
                                   names, dark)
            column.keep_button.clicked.connect(
                lambda _checked=False, mid=message.id: self._choose(mid))
            columns.addWidget(column)
            self.columns.append(column)
        scroll = QScrollArea()
        scroll.setWidget(row)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        asked = question.content if question else ""
        if len(asked) > QUESTION_CHARS:
            asked = asked[:QUESTION_CHARS].rstrip() + "…"
        self.question_label = QLabel(f"You asked: {asked}" if asked else "")
        self.question_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.question_label)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        width = min(len(versions), 3) * (COLUMN_WIDTH + 16) + 40
        self.resize(max(width, 480), 560)

    def _choose(self, message_id: int) -> None:
        self.chosen.emit(message_id)
        self.accept()
