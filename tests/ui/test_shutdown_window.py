"""The one shutdown sequence (``ui/shutdown.py``) as the window's File → Quit reaches it,
inside the app's real event loop: a reply being written is stopped and stored first,
then everything stops, the store is closed and the loop exits with the status asked for.
(SIGINT/SIGTERM and a load in progress: tests/e2e/test_window_signals.py.)"""

from __future__ import annotations

import threading

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
from llamadesk.services.jobs import ModelState
from llamadesk.services.worker import abandoned_threads

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


def test_closing_during_the_early_load_hides_the_window_before_waiting_for_the_load(
        qtbot: QtBot, qapp: QApplication, real_window: WindowFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the window while llama.cpp still loads the model early (a large model, a
    slow disk; services/llama_early.py), which the model's thread waits for: the window
    is gone before the sequence waits for that thread, and the load, ended behind it,
    is freed; the app exits with its status. The real bundled model through the real
    engine; only the C load's end is held by the test."""
    from llamadesk.services import llama_early

    llama_early.forget_for_tests()
    llama_early.bindings()
    load = llama_early._load_from_file
    release = threading.Event()

    def held(path: bytes, params: object) -> object:
        assert release.wait(60), "the test released the load"
        return load(path, params)

    monkeypatch.setattr(llama_early, "_load_from_file", held)
    abandoned_before = abandoned_threads()
    window = real_window()
    path = window.ctx.resolver.chat_spec(window.chat.current_conversation()).path
    loader = threading.Thread(target=llama_early.load_early, args=(path, 0))
    loader.start()
    try:
        qtbot.waitUntil(lambda: window.inference.state == ModelState.LOADING, timeout=WAIT_MS)
        seen: list[tuple[bool, bool]] = []
        stop_model = window.inference.shutdown

        def noted_shutdown(timeout_ms: int = 10_000) -> bool:
            seen.append((window.isVisible(), release.is_set()))
            threading.Timer(0.3, release.set).start()  # the load ends behind the window
            return stop_model(timeout_ms)

        monkeypatch.setattr(window.inference, "shutdown", noted_shutdown)
        window.shutdown.attach(qapp)
        QTimer.singleShot(0, window.close)  # the window's close button
        assert run_app(qapp) == 0
    finally:
        release.set()
        loader.join(60)
        llama_early.forget_for_tests()
    assert seen == [(False, False)], "hidden while the load still ran, before the wait"
    assert window.shutdown.finished and not window.isVisible()
    assert abandoned_threads() == abandoned_before, "the load ended within the deadline"
