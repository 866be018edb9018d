"""A child process for tests/e2e/test_window_signals.py: the app's own GUI
(``ui.app.run_gui``, the real window, store and inference service on the bundled model)
that receives SIGTERM as soon as the model starts loading. The load deadline of the
shutdown sequence (``ui/shutdown.LOAD_DEADLINE_MS``) is cut to 1 ms, so the load, which
llama.cpp cannot interrupt, is still running when quitting reaches it.

Writes ``state-at-quit=<the model's state when the sequence stopped the model>`` and
``status=<run_gui's status> abandoned=<threads given up on>`` to the file named by its
argument, then exits with that status. Not to stdout: while llama-cpp-python loads a
model it points the process's stdout and stderr at /dev/null, and the abandoned load is
still doing so when these lines are written.
"""

from __future__ import annotations

import os
import signal
import sys

from PySide6.QtWidgets import QApplication

from llamadesk.services.inference import ModelState
from llamadesk.services.worker import abandoned_threads, leave_now_if_abandoned
from llamadesk.ui import app as gui
from llamadesk.ui import shutdown
from llamadesk.ui.main_window import MainWindow


def note(line: str) -> None:
    with open(sys.argv[1], "a", encoding="utf-8") as report:
        report.write(line + "\n")


def main() -> int:
    shutdown.LOAD_DEADLINE_MS = 1
    build = gui.build_window

    def build_and_watch(qapp: QApplication) -> MainWindow | None:
        window = build(qapp)
        assert window is not None
        inference = window.inference
        stop_model = inference.shutdown

        def noted_shutdown(timeout_ms: int = 10_000) -> object:
            note(f"state-at-quit={inference.state.value}")
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
    note(f"status={status} abandoned={','.join(abandoned_threads())}")
    leave_now_if_abandoned(status)  # as the command line does after the window
    return status


if __name__ == "__main__":
    sys.exit(main())
