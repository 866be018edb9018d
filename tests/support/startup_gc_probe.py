"""Start the real window as ``llamadesk`` does and report, as lines on stdout, whether
Python's garbage collector ran while the window was built and after its first paint.

    python startup_gc_probe.py

Run with ``LLAMADESK_HOME`` pointing at a fresh folder and ``QT_QPA_PLATFORM`` set.
The application object is the real ``QApplication`` with an event filter: at the main
window's first paint it notes the collector's state, then waits for the start-up to
turn collection back on (a turn of the event loop at a time, 10 s at most) and exits.
"""

from __future__ import annotations

import gc
import os
import time

import PySide6.QtWidgets as QtWidgets
from PySide6.QtCore import QEvent, QObject, QTimer

LIMIT_S = 10.0


class _FirstPaint(QObject):
    """Notes the collector's state at the main window's first paint."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (not self.seen and event.type() == QEvent.Type.Paint
                and type(watched).__name__ == "MainWindow"):
            self.seen = True
            print(f"frozen-at-first-paint={gc.get_freeze_count()}", flush=True)
            _wait_for_collection(time.monotonic() + LIMIT_S)
        return False


def _wait_for_collection(deadline: float) -> None:
    if gc.isenabled() or time.monotonic() > deadline:
        print(f"enabled-after-paint={gc.isenabled()}", flush=True)
        print(f"frozen-after-paint={gc.get_freeze_count()}", flush=True)
        os._exit(0)
    QTimer.singleShot(0, lambda: _wait_for_collection(deadline))


_watcher = _FirstPaint()


class _App(QtWidgets.QApplication):
    """The real application object, with the first-paint watcher installed."""

    def __init__(self, argv: list[str]) -> None:
        print(f"enabled-while-building={gc.isenabled()}", flush=True)
        super().__init__(argv)
        self.installEventFilter(_watcher)


def main() -> None:
    QtWidgets.QApplication = _App  # type: ignore[misc]  # ui/app.py imports it after this
    from llamadesk.cli.main import main as cli_main

    cli_main([])
    raise SystemExit("the window closed without being painted")


if __name__ == "__main__":
    main()
