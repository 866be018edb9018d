"""Preferences -> Privacy: whether the chats are encrypted, where their key lives, and
a passphrase to set, change or turn off. Each action takes effect at once (it is about
the key, not a setting to save with OK)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from llamadesk import APP_NAME
from llamadesk.core.paths import AppPaths
from llamadesk.core.store import StoreError
from llamadesk.core.store_keys import Protection
from llamadesk.core.store_open import set_passphrase, store_status, turn_off_passphrase
from llamadesk.ui.store_unlock import ask_new_passphrase, ask_passphrase

log = logging.getLogger(__name__)

LOST_WARNING = ("If the passphrase is forgotten, the conversations cannot be read by "
                "anyone, LlamaDesk included. `llamadesk store export-key` makes a backup "
                "of the key.")


class PrivacyPage(QWidget):
    """The Privacy tab of the preferences."""

    def __init__(self, paths: AppPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._paths = paths
        self.state = QLabel()
        self.state.setObjectName("storeState")
        self.state.setWordWrap(True)
        warning = QLabel(LOST_WARNING)
        warning.setWordWrap(True)
        warning.setEnabled(False)
        self.set_button = QPushButton("Set a passphrase…")
        self.change_button = QPushButton("Change passphrase…")
        self.off_button = QPushButton("Turn passphrase off")
        self.set_button.clicked.connect(self._set)
        self.change_button.clicked.connect(self._change)
        self.off_button.clicked.connect(self._turn_off)
        buttons = QHBoxLayout()
        for button in (self.set_button, self.change_button, self.off_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        layout.addWidget(warning)
        layout.addStretch(1)
        self.refresh()

    def refresh(self) -> None:
        """Show the store's state and the actions that fit it."""
        try:
            status = store_status(self._paths)
        except StoreError as exc:
            self.state.setText(str(exc))
            return
        if status.protection is Protection.NONE:
            text = "Your chats are stored unencrypted, as you chose."
        elif status.protection is Protection.PASSPHRASE:
            text = ("Your chats are encrypted; the key is protected by your passphrase, "
                    "asked at every start.")
        else:
            text = "Your chats are encrypted; the key is kept in the system keychain."
        if status.exists and not status.encrypted and status.protection is not Protection.NONE:
            text += " The database is encrypted at the next start."
        self.state.setText(f"{text}\n{status.path}")
        on = status.protection is Protection.PASSPHRASE
        self.set_button.setVisible(not on)
        self.change_button.setVisible(on)
        self.off_button.setVisible(on)

    def _set(self) -> None:
        new = ask_new_passphrase(self, f"{APP_NAME}: set a passphrase")
        if new is not None:
            self._apply(lambda: set_passphrase(self._paths, new),
                        "From the next start, LlamaDesk asks for this passphrase.")

    def _change(self) -> None:
        old = ask_passphrase(self, "Current passphrase:")
        if old is None:
            return
        new = ask_new_passphrase(self, f"{APP_NAME}: change the passphrase")
        if new is not None:
            self._apply(lambda: set_passphrase(self._paths, new, old), "Passphrase changed.")

    def _turn_off(self) -> None:
        old = ask_passphrase(self, "Current passphrase:")
        if old is not None:
            self._apply(lambda: turn_off_passphrase(self._paths, old),
                        "The key is in the system keychain again; no passphrase is asked.")

    def _apply(self, action: Callable[[], None], done: str) -> None:
        try:
            action()
        except StoreError as exc:
            QMessageBox.warning(self, APP_NAME, str(exc))
        else:
            QMessageBox.information(self, APP_NAME, done)
        self.refresh()
