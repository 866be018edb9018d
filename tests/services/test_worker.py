"""The worker-thread helper: a named thread, queued slots, a bounded stop that logs
instead of terminating, and the worker deleted once the thread has finished."""

from __future__ import annotations

import logging
import threading

import pytest
import shiboken6
from PySide6.QtCore import QObject, QThread, Signal, Slot
from pytestqt.qtbot import QtBot

from llamadesk.services.worker import WorkerThread


class _Signals(QObject):
    ran = Signal(str, object)


class _Worker(QObject):
    """Reports the thread it runs on through signals it does not own."""

    def __init__(self, out: _Signals) -> None:
        super().__init__()
        self._out = out
        self.entered = threading.Event()
        self.release = threading.Event()

    @Slot()
    def report(self) -> None:
        self._out.ran.emit(QThread.currentThread().objectName(), threading.get_ident())

    @Slot()
    def block(self) -> None:
        self.entered.set()
        self.release.wait(60)


class _Service(_Signals):
    _report = Signal()
    _block = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.worker = _Worker(self)
        self._report.connect(self.worker.report)
        self._block.connect(self.worker.block)
        self.thread = WorkerThread(self.worker, "test-worker")


def test_slots_run_on_the_named_thread_and_signals_arrive_on_the_gui_thread(
        qtbot: QtBot) -> None:
    service = _Service()
    received: list[int] = []
    service.ran.connect(lambda _name, _ident: received.append(threading.get_ident()))
    with qtbot.waitSignal(service.ran, timeout=10_000) as ran:
        service._report.emit()
    name, ident = ran.args
    assert name == "test-worker"
    assert ident != threading.get_ident()
    qtbot.waitUntil(lambda: bool(received), timeout=10_000)
    assert received == [threading.get_ident()]  # delivered queued, on the GUI thread
    assert service.thread.stop()
    assert not service.thread.running


def test_the_worker_is_deleted_when_the_thread_finishes(qtbot: QtBot) -> None:
    service = _Service()
    worker = service.worker
    assert service.thread.stop()
    qtbot.waitUntil(lambda: not shiboken6.isValid(worker), timeout=10_000)
    assert service.thread.stop()  # stopping a stopped thread is harmless


def test_a_stop_that_times_out_is_logged_not_forced(qtbot: QtBot,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    service = _Service()
    service._block.emit()
    assert service.worker.entered.wait(10)
    with caplog.at_level(logging.ERROR, logger="llamadesk.services.worker"):
        assert not service.thread.stop(timeout_ms=50)
    assert "the test-worker thread did not stop within 50 ms" in caplog.text
    assert service.thread.running  # not terminated
    service.worker.release.set()
    assert service.thread.stop()
    assert not service.thread.running
