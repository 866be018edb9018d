"""Import the engine's modules (llama-cpp-python with numpy: ~0.2 s of CPU) on a thread
of their own from the moment the window's start-up begins, beside the window's imports.

Much of that import (reading files, loading shared libraries, their C set-up) runs
beside the GUI thread's own Python on a second core: measured, the model was loaded
~0.3 s sooner, the window idle at most ~80 ms later (docs/performance.md, "Start-up").
The inference thread's ``prepare()`` then finds the modules imported (or waits for
this import to finish; Python's import lock sees to that) and reports a failure
itself, so nothing is reported here. This module imports neither llama.cpp nor numpy
nor psutil itself.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading

log = logging.getLogger(__name__)

#: "0": import the engine after the first paint only, as the inference thread does (the
#: start-up import test, which lists what the GUI thread itself needs).
EARLY_ENV = "LLAMADESK_ENGINE_EARLY"
THREAD_NAME = "engine-import"

_thread: threading.Thread | None = None


def start_early() -> bool:
    """Start importing the engine now, once per process; returns whether it started
    (not when ``LLAMADESK_ENGINE_EARLY=0``). Not a daemon thread: a window closed at
    once waits for the import to end (under a second) rather than cutting a C
    extension's set-up short at exit."""
    global _thread
    if _thread is not None or os.environ.get(EARLY_ENV) == "0":
        return False
    _thread = threading.Thread(target=_import_engine, name=THREAD_NAME)
    _thread.start()
    return True


def started() -> bool:
    """Whether ``start_early`` started the import in this process."""
    return _thread is not None


def _import_engine() -> None:
    try:
        importlib.import_module("llamadesk.services.engine")
        # A message sent at once builds its load options on the GUI thread, which asks
        # psutil for the cores (~20 ms to import): imported here, that is a lookup there.
        importlib.import_module("psutil")
    except Exception as exc:  # prepare() imports it again and reports why it fails
        log.debug("the engine's early import failed: %s", exc)
