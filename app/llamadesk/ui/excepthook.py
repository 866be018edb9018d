"""The GUI's last line of defence: an exception nobody caught (in a slot, on a worker
thread) is logged and the user is told where the log is, instead of the app failing
silently in a windowed build."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

from llamadesk import APP_NAME

log = logging.getLogger(__name__)


class CrashReporter(QObject):
    """Logs uncaught exceptions from any thread and shows one dialog at a time on the
    GUI thread: what happened in a sentence and where the log file is; the traceback
    only under "Show Details…".

    Signals:
        reported(str): an uncaught exception was logged; its one-line summary.
    """

    reported = Signal(str)
    _show_requested = Signal(str, str)

    def __init__(self, log_file: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self.dialog: QMessageBox | None = None
        # Queued: a worker thread's exception is shown by the GUI thread, and one raised
        # inside a slot is shown after that slot has unwound.
        self._show_requested.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        """Become ``sys.excepthook`` and ``threading.excepthook``."""
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook

    def excepthook(self, exc_type: type[BaseException], exc: BaseException,
                   tb: TracebackType | None) -> None:
        """Log an exception that reached the top of the GUI thread, and say so."""
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))
        self._report(exc_type, exc, tb)

    def thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        """Log an exception that ended a Python thread, and say so."""
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "unknown"
        log.critical("uncaught exception in thread %s", name,
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        self._report(args.exc_type, args.exc_value, args.exc_traceback)

    def _report(self, exc_type: type[BaseException], exc: BaseException | None,
                tb: TracebackType | None) -> None:
        summary = traceback.format_exception_only(exc_type, exc)[-1].strip()
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self.reported.emit(summary)
        self._show_requested.emit(summary, details)

    @Slot(str, str)
    def _show(self, _summary: str, details: str) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            return  # one is enough: a failing paint would otherwise stack them up
        app = QApplication.instance()
        parent = app.activeWindow() if isinstance(app, QApplication) else None
        box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME,
                          f"Something went wrong inside {APP_NAME}.", parent=parent)
        box.setInformativeText(
            "What happened was written to the log file:\n"
            f"{self.log_file}\n\nYour chats are stored as you go. If the app misbehaves "
            "from here, close and reopen it, and please attach the log to a bug report.")
        box.setDetailedText(details)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.destroyed.connect(self._forget_dialog)
        self.dialog = box
        box.open()

    @Slot()
    def _forget_dialog(self) -> None:
        self.dialog = None


def install_excepthook(log_file: Path, parent: QObject | None = None) -> CrashReporter:
    """Install a CrashReporter for ``log_file`` and return it (keep it alive)."""
    reporter = CrashReporter(log_file, parent)
    reporter.install()
    return reporter
