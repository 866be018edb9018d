"""The one shutdown sequence (``ui/shutdown.py``) as the window's File → Quit reaches it,
inside the app's real event loop: a reply being written is stopped and stored first,
then everything stops, the store is closed and the loop exits with the status asked for.
(SIGINT/SIGTERM and a load in progress: tests/e2e/test_window_signals.py.)"""

from __future__ import annotations

import pytest
from fake_inference import FakeReply
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory, fake_of

from llamadesk.core.conversation import FinishReason, Role
from llamadesk.core.paths import app_paths
from llamadesk.core.store_open import open_store

WAIT_MS = 10_000


def run_app(qapp: QApplication) -> int:
    """``qapp.exec()``, ended with 99 if the window never quits it (a failure, not a hang)."""
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: qapp.exit(99))
    guard.start(6 * WAIT_MS)
    try:
        return qapp.exec()
    finally:
        guard.stop()
        qapp.setQuitOnLastWindowClosed(True)


def test_quit_stores_the_reply_stops_everything_and_exits_with_its_status(
        qtbot: QtBot, qapp: QApplication, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script(FakeReply.long())
    asked = window.current_id
    window.chat.composer.setPlainText("Tell me everything.")
    window.chat.composer.submit()
    qtbot.waitUntil(lambda: len(window.controller.live_text(asked)) > 20, timeout=WAIT_MS)
    quit_action = next(a for a in window.findChildren(QAction) if a.text() == "&Quit")
    window.shutdown.attach(qapp)
    QTimer.singleShot(0, quit_action.trigger)  # File → Quit: status 0
    assert run_app(qapp) == 0
    assert not window.isVisible() and window.shutdown.finished
    assert not window.ctx.busy.now().busy
    with pytest.raises(Exception, match="closed"):
        window.store.list_conversations()  # the sequence closed the store
    store = open_store(app_paths())
    try:
        stored = store.messages(asked)[-1]
    finally:
        store.close()
    assert stored.role == Role.ASSISTANT and stored.stats is not None
    assert stored.stats.finish_reason == FinishReason.STOPPED, "stopped and kept, then quit"


def test_quit_asked_with_a_status_exits_with_it(qapp: QApplication,
                                                 fake_window: WindowFactory) -> None:
    window = fake_window()
    window.shutdown.attach(qapp)
    QTimer.singleShot(0, lambda: window.shutdown.quit(4))  # as the screenshot run does
    assert run_app(qapp) == 4
    assert window.shutdown.finished and not window.isVisible()
