"""Starting the GUI (the window itself: test_main_window.py)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.crashlog import crash_notice
from llamadesk.ui import app
from llamadesk.ui.excepthook import CrashReporter


def test_run_gui_installs_the_excepthook_before_building_the_window(
        qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    hooks: list[object] = []

    def no_window(_app: object) -> None:
        hooks.append(sys.excepthook)
        return None  # as when the database cannot be opened

    monkeypatch.setattr(app, "build_window", no_window)
    assert app.run_gui() == 1
    assert isinstance(getattr(hooks[0], "__self__", None), CrashReporter)
    assert isinstance(getattr(threading.excepthook, "__self__", None), CrashReporter)


def test_run_gui_tells_of_the_last_crash_without_blocking_the_window(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    window = fake_window(show=False)
    monkeypatch.setattr(app, "build_window", lambda _app: window)
    notice = crash_notice([Path("/logs/crashes/crash-20260101-120000-42.log")])
    assert notice is not None
    seen: list[tuple[str, bool, bool]] = []

    def look_and_quit() -> None:
        boxes = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.isVisible()]
        seen.extend((box.text(), box.isModal(), window.isEnabled()) for box in boxes)
        for box in boxes:
            box.close()
        QApplication.exit(0)

    QTimer.singleShot(0, look_and_quit)
    assert app.run_gui(crash=notice) == 0
    assert seen == [(notice, False, True)]
    assert "crash-20260101-120000-42.log" in seen[0][0]


def test_run_gui_calls_on_shown_once_the_window_is_shown_before_its_first_paint(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line starts the engine's import from ``on_shown``: the window is
    already shown then (its modules imported, itself built) and not yet painted."""
    from PySide6.QtCore import QEvent, QObject

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    window = fake_window(show=False)
    monkeypatch.setattr(app, "build_window", lambda _app: window)
    order: list[str] = []

    class Paints(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if watched is window and event.type() == QEvent.Type.Paint:
                order.append("painted")
            return False

    paints = Paints()
    window.installEventFilter(paints)
    QTimer.singleShot(50, lambda: QApplication.exit(0))
    assert app.run_gui(on_shown=lambda: order.append(
        f"on_shown visible={window.isVisible()}")) == 0
    assert order[0] == "on_shown visible=True"
    assert order.count("on_shown visible=True") == 1
    assert "painted" in order[1:]
