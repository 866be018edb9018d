"""50 rapid stop/start cycles in the window, through the real services and the bundled
model: each request ends with exactly one final signal, the window never stays in its
"generating" state, and resident memory stays within a stated bound.

Each cycle sends with Enter and stops with the Stop action (Esc) at once, or a moment
later; some replies are stopped before their first token, some mid-stream, some finish
first. Whatever happened, the window must be ready to send again.
"""

from __future__ import annotations

import random

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.services.inference import ModelState
from llamadesk.ui.main_window import MainWindow

CYCLES = 50
WARM_UP = 10
RSS_GROWTH_BOUND = 64 * 1024 * 1024
WAIT_MS = 120_000
PARAMS = SamplingParams(max_tokens=48, n_ctx=1024, temperature=0.8, seed=-1,
                        repeat_penalty=1.0)


@pytest.fixture
def window(real_window: WindowFactory) -> MainWindow:
    return real_window(settings=AppSettings(defaults=PARAMS,
                                            hardware=HardwareSettings(n_threads=1)))


def stop_action(window: MainWindow) -> QAction:
    return next(a for a in window.findChildren(QAction)
                if a.text().replace("&", "") == "Stop generating")


@pytest.mark.slow
def test_50_rapid_stop_start_cycles_leave_nothing_stuck(qtbot: QtBot,
                                                        window: MainWindow) -> None:
    finals: list[str] = []
    window.controller.reply_finished.connect(lambda _cid, _m: finals.append("finished"))
    window.controller.reply_failed.connect(lambda _cid, reason: finals.append(reason))
    stop = stop_action(window)
    rng = random.Random(50)
    rss_warm = 0
    for cycle in range(1, CYCLES + 1):
        before = len(finals)
        qtbot.keyClicks(window.chat.composer, f"Tell me a long story, number {cycle}.")
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
        assert window.chat.composer.toPlainText() == "", "sent"
        assert window.chat.send_button.text() == "Stop" and stop.isEnabled()
        pause = rng.choice([0, 0, 5, 30, 120])
        if pause:
            qtbot.wait(pause)
        stop.trigger()
        qtbot.waitUntil(lambda before=before: len(finals) > before, timeout=WAIT_MS)
        qtbot.wait(20)  # a second final signal would show up now
        assert finals[before:] == ["finished"], (cycle, finals[before:])
        # Ready again: nothing stuck in "generating".
        assert not window.controller.busy and not window.inference.busy
        assert window.chat.send_button.text() == "Send" and not stop.isEnabled()
        qtbot.waitUntil(lambda: window.inference.state == ModelState.READY, timeout=WAIT_MS)
        assert window.status.state_label.text() == "Ready"
        if cycle == WARM_UP:
            rss_warm = int(psutil.Process().memory_info().rss)
    rss_end = int(psutil.Process().memory_info().rss)
    growth = rss_end - rss_warm
    print(f"\n{CYCLES} stop/start cycles; RSS after {WARM_UP}: {rss_warm / 2**20:.1f} MiB, "
          f"at the end: {rss_end / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB "
          f"(bound {RSS_GROWTH_BOUND / 2**20:.0f} MiB)")
    assert len(finals) == CYCLES
    assert growth < RSS_GROWTH_BOUND
    # The stored replies are the partial ones that were stopped (or a few that finished).
    stored = window.store.messages(window.current_id)  # type: ignore[arg-type]
    assert len([m for m in stored if m.role == "user"]) == CYCLES
