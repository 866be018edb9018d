"""A reply taller than the view is painted only where it is on screen, and looks exactly
as when it was painted whole: the bubble's corners, its fill and its text, scrolled to
the top, the middle and the end, in the light and the dark palette."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage, QPalette
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Message, Role
from llamadesk.ui.message_model import MessageListModel
from llamadesk.ui.message_view import MessageDelegate, MessageView
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.theme import dark_palette, light_palette

PARAGRAPH = ("The lighthouse keeper climbed the stairs at dusk, counting each of the "
             "hundred and twelve steps as his father had, and lit the lamp. ")


def _grab(view: MessageView) -> QImage:
    view.viewport().update()
    return view.viewport().grab().toImage()


@pytest.mark.parametrize("dark", [False, True])
def test_a_tall_reply_looks_the_same_painted_in_part(qtbot: QtBot, dark: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    view = MessageView(ModelNames())
    qtbot.addWidget(view)
    view.setPalette(dark_palette() if dark else light_palette())
    model = MessageListModel()
    view.setModel(model)
    view.resize(640, 360)
    view.show()
    model.append_message(Message(id=1, conversation_id=1, role=Role.USER,
                                 content="Tell me a long story.", parent_id=None,
                                 created_at=0.0))
    model.begin_reply()
    model.append_reply_text("\n\n".join(PARAGRAPH * 3 for _ in range(40)))
    qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > 1500)
    bar = view.verticalScrollBar()
    for position in (0, bar.maximum() // 2, bar.maximum()):
        bar.setValue(position)
        part = _grab(view)
        with monkeypatch.context() as m:  # the whole bubble and every line, as before
            m.setattr(MessageDelegate, "_visible", staticmethod(lambda _option: None))
            whole = _grab(view)
        assert part == whole, f"scrolled to {position} of {bar.maximum()}"
        assert part.pixelColor(20, 180) != view.palette().color(QPalette.ColorRole.Base), (
            "the bubble is painted")
