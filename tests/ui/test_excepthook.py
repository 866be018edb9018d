"""An exception nobody caught, in a slot or on a thread: logged, and a dialog says where
the log is (the traceback only under Details)."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from llamadesk.core.logs import setup_logging
from llamadesk.ui.excepthook import CrashReporter, install_excepthook


class Emitter(QObject):
    fired = Signal()


class Broken(QObject):
    @Slot()
    def explode(self) -> None:
        raise RuntimeError("a bug in a slot")


@pytest.fixture
def reporter(qtbot: QtBot, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> CrashReporter:
    log_file = tmp_path / "logs" / "llamadesk.log"
    setup_logging(log_file)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    reporter = install_excepthook(log_file)
    yield reporter
    if reporter.dialog is not None:
        reporter.dialog.close()
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, "_llamadesk", False):
            logging.getLogger().removeHandler(handler)
            handler.close()


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_is_logged_and_shown_with_the_log_location(
        qtbot: QtBot, reporter: CrashReporter) -> None:
    assert sys.excepthook == reporter.excepthook
    emitter, broken = Emitter(), Broken()
    emitter.fired.connect(broken.explode)
    with qtbot.waitSignal(reporter.reported) as reported:
        emitter.fired.emit()
    assert reported.args == ["RuntimeError: a bug in a slot"]
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible())
    dialog = reporter.dialog
    assert isinstance(dialog, QMessageBox)
    shown = dialog.text() + dialog.informativeText()
    assert str(reporter.log_file) in shown
    assert "Traceback" not in shown and "a bug in a slot" not in shown
    assert "Traceback" in dialog.detailedText() and "explode" in dialog.detailedText()
    logged = reporter.log_file.read_text(encoding="utf-8")
    assert "uncaught exception" in logged and "RuntimeError: a bug in a slot" in logged


@pytest.mark.qt_no_exception_capture
def test_a_second_failure_does_not_stack_a_second_dialog(
        qtbot: QtBot, reporter: CrashReporter) -> None:
    emitter, broken = Emitter(), Broken()
    emitter.fired.connect(broken.explode)
    emitter.fired.emit()
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible())
    first = reporter.dialog
    with qtbot.waitSignal(reporter.reported):
        emitter.fired.emit()
    qtbot.wait(20)
    assert reporter.dialog is first
    assert reporter.log_file.read_text(encoding="utf-8").count("uncaught exception") == 2


@pytest.mark.qt_no_exception_capture
def test_an_exception_on_a_thread_is_shown_by_the_gui_thread(
        qtbot: QtBot, reporter: CrashReporter) -> None:
    def work() -> None:
        raise ValueError("a bug on a thread")

    thread = threading.Thread(target=work, name="worker-under-test")
    with qtbot.waitSignal(reporter.reported):
        thread.start()
        thread.join()
    qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible())
    assert "ValueError: a bug on a thread" in reporter.dialog.detailedText()
    logged = reporter.log_file.read_text(encoding="utf-8")
    assert "uncaught exception in thread worker-under-test" in logged
