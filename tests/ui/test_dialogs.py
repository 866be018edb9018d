"""About and diagnostics."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from llamadesk.core.paths import app_paths
from llamadesk.ui.dialogs import AboutDialog


def test_about_lists_the_folders_for_a_bug_report(qtbot: QtBot, home: Path) -> None:
    paths = app_paths().ensure()
    dialog = AboutDialog(paths, "none loaded")
    qtbot.addWidget(dialog)
    text = dialog.details.toPlainText()
    assert f"Logs: {paths.log_dir}" in text and "Model: none loaded" in text
