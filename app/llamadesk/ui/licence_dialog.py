"""The dialog that asks the user to accept a model's licence before its first download."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from llamadesk.core.catalog import Licence
from llamadesk.core.licences import acceptance_text


class LicenceDialog(QDialog):
    """Shows a model's licence and acceptable-use policy and asks the user to accept."""

    def __init__(self, licence: Licence, model_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Licence of {model_name}")
        text = QLabel(acceptance_text(licence).replace("\n", "<br>"))
        text.setTextFormat(Qt.TextFormat.RichText)
        text.setOpenExternalLinks(True)
        text.setWordWrap(True)
        links = QLabel(f'<a href="{licence.url}">Read the licence</a>'
                       + (f' · <a href="{licence.acceptable_use_url}">acceptable-use policy</a>'
                          if licence.acceptable_use_url else ""))
        links.setOpenExternalLinks(True)
        self.confirm = QCheckBox("I have read the licence and will follow it")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.accept_button = buttons.addButton("Accept and download",
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        self.accept_button.setEnabled(False)
        self.confirm.toggled.connect(self.accept_button.setEnabled)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (text, links, self.confirm, buttons):
            layout.addWidget(widget)
