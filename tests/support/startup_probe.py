"""Start the real window as ``llamadesk`` does and write down which modules the GUI
thread imported before the window's first paint, then exit.

    python startup_probe.py OUT.json

Run with ``LLAMADESK_HOME`` pointing at a fresh folder and ``QT_QPA_PLATFORM`` set.
A finder at the front of ``sys.meta_path`` notes every module imported for the first
time on the main thread (it finds nothing itself); modules other threads import (the
inference thread importing llama.cpp) are not the window's start-up cost and are left
out. At the first paint event of the main window, the list is written as JSON:
``{"modules": [...], "engine_import_started": bool, "engine_import_before_show": bool,
"engine_import_before_paint": bool}``: whether the engine's own import thread
(services/engine_import.py) had been started when the GUI thread began to import the
window's modules (``llamadesk.ui.app``), when the window was shown, and by its first
paint.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from importlib.machinery import ModuleSpec
from typing import Any

_seen: list[str] = []
_early: list[bool] = []
_at_show: list[bool] = []


def _engine_import_started() -> bool:
    early = sys.modules.get("llamadesk.services.engine_import")
    return bool(early is not None and early.started())


class _Recorder:
    """Notes names imported on the main thread; never finds a module."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if threading.current_thread() is threading.main_thread():
            _seen.append(name)
            if name == "llamadesk.ui.app" and not _early:
                _early.append(_engine_import_started())
        return None


def main(out: str) -> None:
    sys.meta_path.insert(0, _Recorder())
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    app = QApplication(["llamadesk"])

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if type(watched).__name__ != "MainWindow":
                return False
            if event.type() == QEvent.Type.Show and not _at_show:
                _at_show.append(_engine_import_started())
            if event.type() == QEvent.Type.Paint:
                with open(out, "w", encoding="utf-8") as fh:
                    # Only what was imported: a name looked up but not loaded is left out.
                    json.dump({"modules": sorted(set(_seen) & set(sys.modules)),
                               "engine_import_started": bool(_early and _early[0]),
                               # None: no show event reached the window (a broken probe)
                               "engine_import_before_show": _at_show[0] if _at_show else None,
                               "engine_import_before_paint": _engine_import_started()}, fh)
                os._exit(0)  # the list is written; nothing else is wanted from this run
            return False

    watcher = FirstPaint()
    app.installEventFilter(watcher)
    from llamadesk.cli.main import main as cli_main

    cli_main([])
    sys.exit("the window closed without being painted")


if __name__ == "__main__":
    main(sys.argv[1])
