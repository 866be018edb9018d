"""One long-lived QThread per service, with its worker object, started and stopped the
same way everywhere.

A service builds its worker (a QObject with slots), hands it to ``WorkerThread`` and
talks to it with queued signals. Stopping asks the thread's event loop to quit after the
slot in progress and waits a bounded time; a thread that does not stop in time is
logged, never terminated (``QThread.terminate()`` can leave locks held and files half
written). The worker is deleted on its own thread once the thread has finished.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QThread

log = logging.getLogger(__name__)

#: How long ``stop`` waits by default for the slot in progress to return.
STOP_TIMEOUT_MS = 10_000


class WorkerThread:
    """A named QThread that runs ``worker``'s slots, started at once."""

    def __init__(self, worker: QObject, name: str) -> None:
        self.name = name
        self.worker = worker
        self._thread = QThread()
        self._thread.setObjectName(name)
        worker.moveToThread(self._thread)
        self._thread.finished.connect(worker.deleteLater)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.isRunning()

    def stop(self, timeout_ms: int = STOP_TIMEOUT_MS) -> bool:
        """Quit the thread's event loop once the current slot returns and wait for it.

        Returns whether the thread stopped; a timeout is logged as an error.
        """
        if not self._thread.isRunning():
            return True
        self._thread.quit()
        if self._thread.wait(timeout_ms):
            return True
        log.error("the %s thread did not stop within %d ms", self.name, timeout_ms)
        return False
