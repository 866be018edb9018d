"""The licence dialog: nothing is accepted until the user ticks that they read it."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from llamadesk.core.catalog import ModelCatalog
from llamadesk.ui.licence_dialog import LicenceDialog


def test_licence_dialog_needs_the_checkbox(qtbot: QtBot) -> None:
    entry = ModelCatalog.load().get("llama-2-7b-chat")
    assert entry is not None
    dialog = LicenceDialog(entry.licence, entry.name)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == f"Licence of {entry.name}"
    shown = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert f"released under the {entry.licence.name}" in shown
    assert f'href="{entry.licence.url}"' in shown
    assert not dialog.accept_button.isEnabled()
    dialog.confirm.setChecked(True)
    assert dialog.accept_button.isEnabled()
    dialog.confirm.setChecked(False)
    assert not dialog.accept_button.isEnabled(), "unticking takes the consent back"
