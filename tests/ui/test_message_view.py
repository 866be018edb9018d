"""The chat view marks where the model's memory begins, and the mark moves with it: the
real window, services, llama.cpp and SQLite, with a small context."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Role
from llamadesk.ui.app import build_window
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_model import ChatRow, MessageListModel, MessageRole
from llamadesk.ui.message_view import MessageView

WAIT_MS = 180_000  # generous: the machine may be shared


@pytest.fixture
def window(qtbot: QtBot, home: Path, bundled_model_path: Path) -> Iterator[MainWindow]:
    config = home / "config"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps(
        {"defaults": {"n_ctx": 256, "max_tokens": 8, "seed": 3}}), encoding="utf-8")
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    made = build_window(app)
    assert made is not None
    qtbot.addWidget(made)
    made.show()
    yield made
    made.shutdown.finish()


def marked_rows(model: MessageListModel) -> list[ChatRow]:
    rows = [model.index(i).data(MessageRole.MESSAGE) for i in range(model.rowCount())]
    return [r for r in rows if isinstance(r, ChatRow) and r.memory_start]


@pytest.mark.timeout(900)
def test_the_memory_marker_appears_and_moves(qtbot: QtBot, window: MainWindow) -> None:
    view = window.findChild(MessageView)
    assert view is not None
    model = view.message_model()
    label = window.findChild(QLabel, "contextLabel")
    assert label is not None
    starts: list[int] = []
    for turn in range(16):
        window.chat.composer.setPlainText(f"Question {turn}: describe a quiet harbour town at "
                                     "dawn, its boats, its bakers and its gulls, in detail.")
        with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
            window.chat.composer.submit()
        qtbot.waitUntil(lambda: label.text().endswith("/ 256 tokens"), timeout=5_000)
        marked = marked_rows(model)
        if model.memory_start is None:
            assert marked == []
            continue
        assert [r.message_id for r in marked] == [model.memory_start]
        assert marked[0].role == Role.USER
        if not starts or starts[-1] != model.memory_start:
            starts.append(model.memory_start)
        if len(starts) == 2:
            break
    assert len(starts) == 2, "the marker appeared, then moved on"
    assert starts[1] > starts[0]
    # The marked row is taller by the marker's line; the row it left is not.
    row = next(i for i in range(model.rowCount())
               if model.index(i).data(MessageRole.MESSAGE).message_id == starts[1])
    old = next(i for i in range(model.rowCount())
               if model.index(i).data(MessageRole.MESSAGE).message_id == starts[0])
    assert view.visualRect(model.index(row)).height() > view.visualRect(model.index(old)).height()
    # The marker is where the store says the memory begins, also after reopening.
    cid = window.current_id
    assert cid is not None and window.store.memory_start(cid) == starts[1]
    window.new_conversation()
    assert model.memory_start is None and marked_rows(model) == []
    window.select_conversation(cid)
    assert [r.message_id for r in marked_rows(model)] == [starts[1]]
