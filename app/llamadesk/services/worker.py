"""One long-lived QThread per service, with its worker object, started and stopped the
same way everywhere.

A service builds its worker (a QObject with slots), hands it to ``WorkerThread`` and
talks to it with queued signals. Stopping asks the thread's event loop to quit after the
slot in progress and waits a bounded time; a thread that does not stop in time is
logged, never terminated (``QThread.terminate()`` can leave locks held and files half
written). Such a thread is abandoned instead: its QThread is kept to the end of the
process, because destroying a running QThread aborts the process; the process then exits
with the thread still inside its slot (a llama.cpp load cannot be interrupted). The worker
is deleted on its own thread once the thread has finished.
"""

from __future__ import annotations

import logging
import os
import sys

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Slot

log = logging.getLogger(__name__)

#: How long ``stop`` waits by default for the slot in progress to return.
STOP_TIMEOUT_MS = 10_000

#: Threads that did not stop in time, kept alive to the end of the process.
_abandoned: list[QThread] = []


def abandoned_threads() -> list[str]:
    """The names of the threads given up on so far (still running, or were at exit)."""
    return [thread.objectName() for thread in _abandoned]


def leave_now_if_abandoned(status: int) -> None:
    """End the process with ``status`` at once when a thread was given up on.

    That thread is still inside llama.cpp (a model load); tearing the interpreter and
    the libraries' static objects down under it can crash the process (seen as a
    segfault at exit on a busy machine). Everything the app keeps is closed by then
    (the store by the shutdown sequence, the crash log by the command line), so only
    the logs and the standard streams are flushed first."""
    if not _abandoned:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)


class _Quitter(QObject):
    """Lives on the worker's thread; its queued ``quit`` runs after the calls queued
    before it, so the thread ends only once they have run."""

    @Slot()
    def quit(self) -> None:
        thread = self.thread()
        if thread is not None:
            thread.quit()


class WorkerThread:
    """A named QThread that runs ``worker``'s slots, started at once."""

    def __init__(self, worker: QObject, name: str) -> None:
        self.name = name
        self.worker = worker
        self._thread = QThread()
        self._thread.setObjectName(name)
        worker.moveToThread(self._thread)
        self._quitter = _Quitter()
        self._quitter.moveToThread(self._thread)
        self._thread.finished.connect(worker.deleteLater)
        self._thread.finished.connect(self._quitter.deleteLater)
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
        return self._wait(timeout_ms)

    def finish(self, timeout_ms: int = STOP_TIMEOUT_MS) -> bool:
        """Like ``stop``, but the calls already queued to the worker run first (a
        clean-up slot invoked just before, say). Returns whether the thread stopped; one
        that did not within ``timeout_ms`` is abandoned, as with ``stop``."""
        if not self._thread.isRunning():
            return True
        QMetaObject.invokeMethod(self._quitter, "quit", Qt.ConnectionType.QueuedConnection)
        return self._wait(timeout_ms)

    def _wait(self, timeout_ms: int) -> bool:
        if self._thread.wait(timeout_ms):
            return True
        log.error("the %s thread did not stop within %d ms; abandoned", self.name, timeout_ms)
        self._abandon()
        return False

    def _abandon(self) -> None:
        if self._thread in _abandoned:
            return
        # Python owns the QThread and would delete it when the application is torn down,
        # and deleting a running QThread aborts the process. As a child of the thread
        # object it was made on (the GUI thread's, never deleted before the process
        # ends) it is owned by Qt and stays to the end.
        self._thread.setParent(self._thread.thread())
        _abandoned.append(self._thread)
