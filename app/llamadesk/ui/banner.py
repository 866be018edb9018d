"""A dismissable line that says what went wrong."""

from __future__ import annotations

from collections.abc import Callable

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
        self.action_button = QToolButton()  # what the user can do about it, when anything
        self.action_button.setAccessibleName("Fix it")
        self.action_button.clicked.connect(self._act)
        self.action_button.hide()
        self._action: Callable[[], None] | None = None
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAccessibleName("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close)
        self.setStyleSheet("#errorBanner { background: rgba(220, 60, 60, 40); "
                           "border: 1px solid rgba(220, 60, 60, 120); border-radius: 6px; }")
        self.hide()

    def show_message(self, text: str, action: str | None = None,
                     on_action: Callable[[], None] | None = None) -> None:
        """Show ``text``, with a button labelled ``action`` that calls ``on_action``."""
        self.label.setText(text)
        self._action = on_action if action else None
        self.action_button.setText(action or "")
        self.action_button.setAccessibleName(action or "Fix it")
        self.action_button.setVisible(self._action is not None)
        self.show()

    def _act(self) -> None:
        if self._action is not None:
            self.hide()
            self._action()
