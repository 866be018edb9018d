"""A child process for tests/services/test_shutdown.py: start a worker thread, leave a
slot running in it, stop it with a short deadline, then exit with a known code.

    python shutdown_child.py worker          # a slot that never returns
    python shutdown_child.py load MODEL.gguf  # the real service, a model load under way

Prints ``stopped=<bool> abandoned=<names>`` and exits with status 3, so the test can tell
a clean exit (3) from an abort (Qt's "destroyed while running": SIGABRT).
"""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

from llamadesk.services.worker import WorkerThread, abandoned_threads


class _Stuck(QObject):
    entered = threading.Event()

    @Slot()
    def block(self) -> None:
        self.entered.set()
        threading.Event().wait()  # never returns: only the process's exit ends it


class _Caller(QObject):
    go = Signal()


def stuck_worker() -> bool:
    worker, caller = _Stuck(), _Caller()
    caller.go.connect(worker.block)
    thread = WorkerThread(worker, "stuck")
    caller.go.emit()
    assert _Stuck.entered.wait(30)
    return thread.finish(timeout_ms=50)


def loading_model(model: str) -> bool:
    from llamadesk.services.engine import LoadOptions
    from llamadesk.services.inference import InferenceService, ModelSpec, ModelState

    service = InferenceService()
    loading = threading.Event()
    service.state_changed.connect(
        lambda state: loading.set() if state == ModelState.LOADING else None)
    service.load_model(ModelSpec(model, "bundled", LoadOptions(n_ctx=2048, n_threads=1)))
    app = QCoreApplication.instance()
    assert app is not None
    while not loading.is_set():  # the worker has taken the load
        app.processEvents()
    return service.shutdown(timeout_ms=1)


def main() -> None:
    app = QCoreApplication(sys.argv[:1])
    stopped = stuck_worker() if sys.argv[1] == "worker" else loading_model(sys.argv[2])
    print(f"stopped={stopped} abandoned={','.join(abandoned_threads())}", flush=True)
    del app
    sys.exit(3)


if __name__ == "__main__":
    main()
