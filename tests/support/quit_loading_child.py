"""A child process for tests/e2e/test_window_signals.py: the app's own GUI
(``ui.app.run_gui``, the real window, store and inference service on the bundled model)
that receives SIGTERM as soon as the model starts loading. The load deadline of the
shutdown sequence (``ui/shutdown.LOAD_DEADLINE_MS``) is cut to 1 ms, so the load, which
llama.cpp cannot interrupt, is still running when quitting reaches it.

Prints ``state-at-quit=<the model's state when the sequence stopped the model>`` and
``status=<run_gui's status> abandoned=<threads given up on>``, then exits with that status.
"""

from __future__ import annotations

import os
import signal
import sys

from PySide6.QtWidgets import QApplication

from llamadesk.services.inference import ModelState
from llamadesk.services.worker import abandoned_threads
from llamadesk.ui import app as gui
from llamadesk.ui import shutdown
from llamadesk.ui.main_window import MainWindow


def main() -> int:
    shutdown.LOAD_DEADLINE_MS = 1
    build = gui.build_window

    def build_and_watch(qapp: QApplication) -> MainWindow | None:
        window = build(qapp)
        assert window is not None
        inference = window.inference
        stop_model = inference.shutdown

        def noted_shutdown(timeout_ms: int = 10_000) -> object:
            print(f"state-at-quit={inference.state.value}", flush=True)
            return stop_model(timeout_ms)

        inference.shutdown = noted_shutdown  # type: ignore[method-assign]

        sent: list[str] = []

        def on_state(state: str) -> None:
            # Once: the service and its worker may both announce the load, and a second
            # signal ends the process at once (as it should: it is the forced quit).
            if state == ModelState.LOADING.value and not sent:
                sent.append(state)
                os.kill(os.getpid(), signal.SIGTERM)  # through ui/quit_signals

        inference.state_changed.connect(on_state)
        return window

    gui.build_window = build_and_watch  # type: ignore[assignment]
    status = gui.run_gui(argv=sys.argv[:1])
    print(f"status={status} abandoned={','.join(abandoned_threads())}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
