"""Guard against a Qt binding that mishandles references on cross-thread signals.

PySide6 6.12.0 dropped a reference to ``True`` on every signal emitted from a worker
thread to the GUI thread; a few thousand streamed batches later the interpreter
aborted. The inference service streams exactly this way, so the binding we install
must not leak.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QObject, QThread, Signal, Slot
from pytestqt.qtbot import QtBot

EMITS = 2000


class _Emitter(QObject):
    batch = Signal(int, str)
    done = Signal()

    @Slot()
    def run(self) -> None:
        for i in range(EMITS):
            self.batch.emit(i, "text")
        self.done.emit()


class _Receiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @Slot(int, str)
    def on_batch(self, _i: int, _text: str) -> None:
        self.count += 1


def test_cross_thread_signals_keep_reference_counts(qtbot: QtBot) -> None:
    thread = QThread()
    emitter = _Emitter()
    emitter.moveToThread(thread)
    receiver = _Receiver()
    emitter.batch.connect(receiver.on_batch)
    thread.started.connect(emitter.run)
    gc.collect()
    before = sys.getrefcount(True)
    thread.start()
    qtbot.waitUntil(lambda: receiver.count == EMITS, timeout=30_000)
    thread.quit()
    thread.wait()
    gc.collect()
    # Unrelated code may hold or drop a few references; a leak drops one per emission.
    assert sys.getrefcount(True) - before > -EMITS // 10
