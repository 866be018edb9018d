"""The window refuses an untested llama-cpp-python in a dialog that says what to do,
before it builds anything (services/llama_version.py)."""

from __future__ import annotations

import sys
import threading

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from llamadesk.core.exit_codes import EXIT_CANNOT_START
from llamadesk.services import llama_version
from llamadesk.ui import app


def test_the_window_refuses_an_untested_llama_cpp_python_in_a_dialog(
        qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.delenv(llama_version.ALLOW_UNTESTED_ENV, raising=False)
    monkeypatch.setattr(llama_version, "installed_version", lambda: "0.3.99")
    built: list[object] = []
    monkeypatch.setattr(app, "build_window", lambda a: built.append(a))
    shown: list[str] = []

    def read_and_close() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QMessageBox):
            QTimer.singleShot(50, read_and_close)
            return
        shown.append(dialog.text())
        dialog.accept()

    QTimer.singleShot(0, read_and_close)
    assert app.run_gui() == EXIT_CANNOT_START
    assert built == [], "nothing was built"
    assert len(shown) == 1
    assert "0.3.99" in shown[0] and llama_version.TESTED_VERSION in shown[0]
