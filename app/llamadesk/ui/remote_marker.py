"""The chat header's marker for a chat whose text leaves this computer: which server
a remote model's chat is sent to. Hidden for local models."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from llamadesk.core import connections as remote
from llamadesk.core.settings import AppSettings


def destination(model_id: str | None, settings: AppSettings) -> tuple[str, str] | None:
    """(connection name, URL) that a chat with ``model_id`` is sent to, or None when
    the model is local (or names no connection the user added)."""
    split = remote.split_model_id(model_id or "")
    connection = remote.find(settings.connections, split[0]) if split else None
    return (connection.name, connection.base_url) if connection is not None else None


class RemoteMarker(QLabel):
    """"Sent to <name>" beside the model picker, with the server's URL as tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("remoteMarker")
        self.setAccessibleName("Where this chat is sent")
        self.hide()

    def show_for(self, model_id: str | None, settings: AppSettings) -> None:
        """Show where a chat with ``model_id`` is sent; hide for a local model."""
        where = destination(model_id, settings)
        if where is None:
            self.hide()
            return
        name, url = where
        self.setText(f"⇄ Sent to {name}")
        self.setToolTip(f"This chat's messages are sent to {url} ({name}), not kept on "
                        "this computer while the model answers.")
        self.show()
