"""The licence dialog: nothing is accepted until the user ticks that they read it."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from llamadesk.core.catalog import ModelCatalog
from llamadesk.ui.licence_dialog import LicenceDialog


def test_licence_dialog_needs_the_checkbox(qtbot: QtBot) -> None:
    entry = ModelCatalog.load().get("llama-2-7b-chat")
    assert entry is not None
    dialog = LicenceDialog(entry.licence, entry.name)
    qtbot.addWidget(dialog)
    assert entry.licence.name in dialog.windowTitle() or entry.name in dialog.windowTitle()
    assert not dialog.accept_button.isEnabled()
    dialog.confirm.setChecked(True)
    assert dialog.accept_button.isEnabled()
