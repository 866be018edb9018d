"""A dismissable line that says what went wrong."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget


class ErrorBanner(QWidget):
    """A dismissable line that says what went wrong, above the composer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.setStyleSheet("#errorBanner { background: rgba(220, 60, 60, 40); "
                           "border: 1px solid rgba(220, 60, 60, 120); border-radius: 6px; }")
        self.hide()

    def show_message(self, text: str) -> None:
        """Show ``text``."""
        self.label.setText(text)
        self.show()
