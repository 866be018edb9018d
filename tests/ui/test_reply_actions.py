"""Compare fine-tunes: "Regenerate with" another installed model stores a sibling
version labelled with its model, the Compare view shows every version side by side, and
keeping one continues the chat from it. Through the real model with two installed
models (the bundled one and an imported variant); the menus and keyboard paths on
FakeInferenceService."""

from __future__ import annotations

from pathlib import Path

from fake_inference import FakeReply
from model_files import variant_of
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot
from tiny_gguf import write_tiny_gguf
from window_fixtures import WindowFactory, fake_of

from llamadesk.core.conversation import Role
from llamadesk.services.inference import ModelState
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_model import ChatRow

WAIT_MS = 180_000
FAKE_WAIT_MS = 10_000
BUNDLED = "smollm2-135m-instruct-q4_1"


def send(qtbot: QtBot, window: MainWindow, text: str, timeout: int) -> None:
    with qtbot.waitSignal(window.controller.reply_finished, timeout=timeout):
        qtbot.keyClicks(window.chat.composer, text)
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


def shown_rows(window: MainWindow) -> list[ChatRow]:
    messages = window.chat.messages
    return [messages.row_at(i) for i in range(messages.rowCount())]


def test_regenerate_with_another_model_compare_and_continue_from_it(
        qtbot: QtBot, real_window: WindowFactory, bundled_model_path: object,
        tmp_path: Path) -> None:
    window = real_window()
    other = window.ctx.registry.import_file(
        variant_of(bundled_model_path, tmp_path / "variant.gguf"), link=True,
        name="Second model")
    window.refresh_models()
    send(qtbot, window, "Name a fruit.", WAIT_MS)
    first = window.store.messages(window.current_id)[-1]
    assert first.model_id == BUNDLED

    states: list[str] = []
    window.inference.state_changed.connect(lambda _s: states.append(
        window.status.state_label.text()))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        assert window.chat.replies.regenerate_with(first.id, other.id)
    second = done.args[1]
    assert "Loading model…" in states, "the other model loads in turn, and it shows"
    assert second.model_id == other.id and second.parent_id == first.parent_id
    versions = window.store.versions(first.id)
    assert [(m.id, m.model_id) for m in versions] == [(first.id, BUNDLED),
                                                      (second.id, other.id)]
    assert window.store.get_conversation(window.current_id).model_id is None, \
        "the chat keeps its own model"
    assert shown_rows(window)[1].message_id == second.id
    assert shown_rows(window)[1].alternatives == (2, 2)

    dialog = window.chat.replies.compare(second.id)
    assert dialog is not None and len(dialog.columns) == 2
    assert "SmolLM2" in dialog.columns[0].model_label.text()
    assert "Second model" in dialog.columns[1].model_label.text()
    for column, message in zip(dialog.columns, versions, strict=True):
        assert "tokens/s" in column.stats_label.text()
        assert f"{message.stats.completion_tokens} tokens" in column.stats_label.text()
    assert "on screen" in dialog.columns[1].stats_label.text()
    assert "Name a fruit." in dialog.question_label.text()

    dialog.columns[1].keep_button.click()  # the second model's version
    assert not dialog.isVisible()
    assert window.store.get_conversation(window.current_id).model_id == other.id, \
        "the chat goes on with the model that wrote the kept version"
    send(qtbot, window, "And a vegetable?", WAIT_MS)
    branch = window.store.messages(window.current_id)
    assert [m.id for m in branch[:2]] == [first.parent_id, second.id]
    assert branch[2].role == Role.USER and branch[2].parent_id == second.id
    assert branch[3].model_id == other.id


def test_the_context_menu_lists_the_models_and_compare(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    window = fake_window()
    other = window.ctx.registry.import_file(write_tiny_gguf(tmp_path / "b.gguf", seed=3),
                                            link=True, name="Fine-tune B")
    window.refresh_models()
    send(qtbot, window, "Hi", FAKE_WAIT_MS)
    reply = shown_rows(window)[1]
    menu = QMenu()
    window.chat.replies.add_to_menu(menu, reply)
    texts = [a.text() for a in menu.actions()]
    assert "&Compare versions…" in texts
    compare = next(a for a in menu.actions() if a.text() == "&Compare versions…")
    assert not compare.isEnabled(), "one version: nothing to compare yet"
    models = next(a.menu() for a in menu.actions() if a.menu() is not None)
    assert [a.text() for a in models.actions()] == ["SmolLM2 135M Instruct (Q4_1)",
                                                    "Fine-tune B"]
    # A question has no such entries.
    question_menu = QMenu()
    window.chat.replies.add_to_menu(question_menu, shown_rows(window)[0])
    assert question_menu.actions() == []

    fake_of(window).script(FakeReply("Another answer"))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=FAKE_WAIT_MS):
        models.actions()[1].trigger()
    _request, spec = fake_of(window).requests[-1]
    assert spec is not None and spec.model_id == other.id
    row = shown_rows(window)[1]
    assert row.model_id == other.id and row.alternatives == (2, 2)
    assert fake_of(window).model_info.model_id == other.id


def test_compare_and_versions_from_the_keyboard(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script("First answer", "Second answer")
    send(qtbot, window, "Hi", FAKE_WAIT_MS)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=FAKE_WAIT_MS):
        window.regenerate_current()  # Ctrl+R: the last reply, none selected
    assert shown_rows(window)[1].content == "Second answer"

    window.compare_current()  # Ctrl+Shift+C
    dialog = window.chat.replies.compare_dialog
    assert dialog is not None and dialog.isVisible()
    assert [c.text.toPlainText().strip() for c in dialog.columns] == ["First answer",
                                                                      "Second answer"]
    dialog.close()
    window.step_version(-1)  # Alt+Left
    assert shown_rows(window)[1].content == "First answer"
    window.step_version(1)  # Alt+Right
    assert shown_rows(window)[1].content == "Second answer"
    assert window.inference.state == ModelState.READY


def test_copy_links_in_the_compare_view_copy_that_versions_code(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QGuiApplication

    window = fake_window()
    fake_of(window).script("One:\n\n```sh\nls -l\n```", "Two:\n\n```sh\nls -a\n```")
    send(qtbot, window, "List files", FAKE_WAIT_MS)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=FAKE_WAIT_MS):
        window.regenerate_current()
    dialog = window.chat.replies.compare(window.chat.replies.target_reply())
    assert dialog is not None
    dialog.columns[0].text.anchorClicked.emit(QUrl("copy:0"))
    assert QGuiApplication.clipboard().text() == "ls -l"
    dialog.columns[1].text.anchorClicked.emit(QUrl("copy:0"))
    assert QGuiApplication.clipboard().text() == "ls -a"
