"""Starting the GUI (the window itself: test_main_window.py)."""

from __future__ import annotations

import sys
import threading

import pytest
from pytestqt.qtbot import QtBot

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
