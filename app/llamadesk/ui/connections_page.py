"""Preferences → Connections: the remote OpenAI-compatible servers the user added.

Add (or change) a connection by name and URL, with an optional API key that goes
straight to the system keychain; turn one off or remove it (and its key); Check asks the server for
its models on the remote-models thread and shows what it found or why not. The list
becomes the settings' ``connections`` when Preferences is accepted.

A key is stored, or forgotten, as a window operation in the background
(``ui/operations.py``): a keychain call can block for as long as the keychain waits to be
unlocked (Secret Service, macOS Keychain ask the user), and the window must not freeze
meanwhile. The operations thread runs its writes in order, so a key stored before OK is in
the keychain before the settings save that makes its connection's models be listed. A
keychain that refuses the key is not an error: ``SecretStore`` keeps the key for this
session and says so, and the page shows that sentence when the write is done.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from llamadesk.core import connections as remote
from llamadesk.core.connections import Connection, InvalidConnectionError, RemoteSettings
from llamadesk.core.secrets import InvalidTokenError, TokenSaveResult, checked_key
from llamadesk.services.remote_models import RemoteModelsService
from llamadesk.ui.operations import Changes, Operations

PRIVACY_NOTE = ("A chat with a model of a connection sends its messages to that server. "
                "Keys are kept only in the system keychain.")


class ConnectionsPage(QWidget):
    """Edits a list of connections; keys are stored at once, the list on OK."""

    def __init__(self, connections: tuple[Connection, ...], service: RemoteModelsService,
                 operations: Operations, settings: RemoteSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._connections = connections
        self._service = service
        self._ops = operations
        self._settings = settings or RemoteSettings()
        self.list = QListWidget()
        self.list.setAccessibleName("Connections")
        self.list.currentRowChanged.connect(self._on_selected)
        self.name = QLineEdit()
        self.name.setPlaceholderText("gpu-box")
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://gpu-box:8000/v1")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional; kept in the system keychain")
        self.enabled = QCheckBox("On (its models are in the model picker)")
        self.enabled.setChecked(True)
        self.status = QLabel(PRIVACY_NOTE)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.save_button = QPushButton("&Add / update")
        self.save_button.clicked.connect(self.save_current)
        self.remove_button = QPushButton("&Remove")
        self.remove_button.clicked.connect(self.remove_current)
        self.check_button = QPushButton("C&heck")
        self.check_button.clicked.connect(self.check_current)
        service.checked.connect(self._on_checked)
        self._layout()
        self._fill()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("&Name:", self.name)
        form.addRow("&URL:", self.url)
        form.addRow("API &key:", self.key)
        form.addRow("", self.enabled)
        buttons = QHBoxLayout()
        for button in (self.save_button, self.remove_button, self.check_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    def _fill(self) -> None:
        self.list.clear()
        for c in self._connections:
            item = QListWidgetItem(f"{c.name} — {c.base_url}{'' if c.enabled else ' (off)'}")
            item.setData(Qt.ItemDataRole.UserRole, c.name)
            self.list.addItem(item)

    def connections(self) -> tuple[Connection, ...]:
        """The connections as edited."""
        return self._connections

    def _current(self) -> Connection | None:
        item = self.list.currentItem()
        return remote.find(self._connections, str(item.data(Qt.ItemDataRole.UserRole))) \
            if item is not None else None

    @Slot(int)
    def _on_selected(self, _row: int) -> None:
        connection = self._current()
        if connection is not None:
            self.name.setText(connection.name)
            self.url.setText(connection.base_url)
            self.enabled.setChecked(connection.enabled)
            self.key.clear()

    @Slot()
    def save_current(self) -> bool:
        """Add the connection in the fields (or change the one of that name); store a
        key typed in the key field. Returns whether it was accepted."""
        try:
            connections = remote.added(self._connections, Connection(
                self.name.text(), self.url.text(), self.enabled.isChecked()))
        except InvalidConnectionError as exc:
            self.status.setText(str(exc))
            return False
        name = remote.check_name(self.name.text())
        if self.key.text().strip():
            try:
                key = checked_key(self.key.text())
            except InvalidTokenError as exc:
                self.status.setText(f"Not a key: {exc}.")
                return False
            self.key.clear()
            self.status.setText("Saving the key…")
            secrets = self._service.secrets
            self._ops.run_in_background(lambda: secrets.set_api_key(name, key), Changes(),
                                        initiator=self, success=self._key_saved)
        self._connections = connections
        self._fill()
        self.list.setCurrentRow(next(i for i, c in enumerate(connections)
                                     if c.name.lower() == name.lower()))
        return True

    @Slot()
    def remove_current(self) -> None:
        """Remove the selected connection and forget its key."""
        connection = self._current()
        if connection is None:
            return
        self._connections = remote.removed(self._connections, connection.name)
        secrets, name = self._service.secrets, connection.name
        self._ops.run_in_background(lambda: secrets.clear_api_key(name), Changes(),
                                    initiator=self)
        self._fill()
        self.status.setText(f"Removed {connection.name} and its key.")

    def _key_saved(self, saved: TokenSaveResult) -> None:
        if isValid(self.status):  # Preferences may have closed while the keychain worked
            self.status.setText(saved.message)

    @Slot()
    def check_current(self) -> None:
        """Ask the connection in the fields for its models (on the worker thread)."""
        try:
            connection = Connection(remote.check_name(self.name.text()),
                                    remote.normalize_url(self.url.text()))
        except InvalidConnectionError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(f"Checking {connection.base_url} …")
        self._service.check(connection, self._settings)

    @Slot(str, object)
    def _on_checked(self, name: str, result: object) -> None:
        if name.lower() == self.name.text().strip().lower():
            self.status.setText(str(getattr(result, "message", result)))
