"""The chat view's row sizes are remembered (QListView asks for every row's size each
time one row is added or grows), and are asked again when what they depend on changes;
a send follows the newest row once it is laid out, unless the user scrolled away."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QStyleOptionViewItem
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Message, Role
from llamadesk.ui.message_model import MessageListModel
from llamadesk.ui.message_view import MessageDelegate, MessageView
from llamadesk.ui.model_names import ModelNames


def _message(i: int, text: str, role: Role = Role.USER) -> Message:
    return Message(id=i, conversation_id=1, role=role, content=text,
                   parent_id=i - 1 if i > 1 else None, created_at=float(i))


def _view(qtbot: QtBot, count: int) -> tuple[MessageView, MessageListModel]:
    view = MessageView(ModelNames())
    qtbot.addWidget(view)
    model = MessageListModel()
    view.setModel(model)
    view.resize(600, 400)
    view.show()
    model.set_messages([_message(i, f"Message {i}: a few words to wrap at some width.",
                                 Role.USER if i % 2 else Role.ASSISTANT)
                        for i in range(1, count + 1)])
    return view, model


def _size(view: MessageView, row: int) -> QSize:
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    delegate = view.itemDelegate()
    assert isinstance(delegate, MessageDelegate)
    return delegate.sizeHint(option, view.model().index(row, 0))


def test_a_stored_rows_size_is_not_rendered_again(qtbot: QtBot,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    view, _model = _view(qtbot, 4)
    first = _size(view, 1)
    rendered: list[int] = []
    original = MessageDelegate.document
    monkeypatch.setattr(MessageDelegate, "document",
                        lambda self, row, width: rendered.append(1) or original(self, row, width))
    assert _size(view, 1) == first
    assert rendered == []


def test_sizes_follow_the_memory_mark_the_font_and_the_width(qtbot: QtBot) -> None:
    view, model = _view(qtbot, 4)
    plain = _size(view, 2)
    model.set_memory_start(3)  # row 2 shows message 3: a marker line above it
    marked = _size(view, 2)
    assert marked.height() > plain.height()
    font = view.font()
    font.setPointSizeF(font.pointSizeF() * 2)
    view.setFont(font)
    assert _size(view, 2).height() > marked.height()
    view.setFont(font)  # the same font again: the remembered size stands
    larger = _size(view, 2)
    view.resize(200, 400)  # narrower: the text wraps on more lines
    assert _size(view, 2).height() > larger.height()
    assert _size(view, 2).width() < larger.width()


def test_the_live_row_is_measured_as_it_grows(qtbot: QtBot) -> None:
    view, model = _view(qtbot, 2)
    model.begin_reply()
    short = _size(view, 2)
    model.append_reply_text("word " * 400)
    assert _size(view, 2).height() > short.height()


def test_a_send_follows_the_new_row_once_it_is_laid_out(qtbot: QtBot) -> None:
    view, model = _view(qtbot, 40)
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum() // 2)  # reading further up
    model.append_message(_message(41, "A new question."))
    view.follow_end()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    last = view.visualRect(model.index(model.rowCount() - 1, 0))
    assert view.viewport().rect().intersects(last)


def test_a_user_who_scrolls_away_before_the_layout_is_not_pulled_back(qtbot: QtBot) -> None:
    view, model = _view(qtbot, 40)
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    model.append_message(_message(41, "A new question."))
    view.follow_end()
    view.doItemsLayout()  # laid out (a resize, say), then the user scrolls up ...
    bar.setValue(bar.maximum() // 2)
    qtbot.wait(50)  # ... before the deferred scroll runs
    assert 0 < bar.value() < bar.maximum()
