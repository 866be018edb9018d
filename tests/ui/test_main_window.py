"""The window, offscreen, driving the real services, llama.cpp and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import FinishReason, Role, SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService, ModelSpec
from llamadesk.services.resolver import make_resolver
from llamadesk.ui.main_window import AppContext, MainWindow

WAIT_MS = 180_000  # generous: the machine may be shared; the benchmark measures speed
SHORT = SamplingParams(temperature=0.7, max_tokens=24, n_ctx=2048, seed=1)


def settings_with(params: SamplingParams) -> AppSettings:
    return AppSettings(defaults=params)


@pytest.fixture
def make_window(qtbot: QtBot, bundled_model_path: object) -> Iterator[Callable[..., MainWindow]]:
    made: list[tuple[MainWindow, InferenceService, ConversationStore]] = []

    def make(params: SamplingParams = SHORT,
             resolver: Callable[[str | None, int], ModelSpec] | None = None) -> MainWindow:
        paths = app_paths().ensure()
        settings = settings_with(params)
        store = ConversationStore(paths.database)
        registry = ModelRegistry(paths)
        inference = InferenceService()
        box: list[MainWindow] = []

        def current() -> AppSettings:
            return box[0].ctx.settings if box else settings

        controller = ChatController(store, inference,
                                    resolver or make_resolver(current, registry))
        window = MainWindow(AppContext(paths, store, inference, controller,
                                       controller.resolve_model, settings, registry))
        box.append(window)
        qtbot.addWidget(window)
        window.show()
        made.append((window, inference, store))
        return window

    yield make
    for window, inference, store in made:
        window.controller.stop()
        window.shutdown_services()
        inference.shutdown()
        store.close()


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    qtbot.keyClicks(window.composer, text)
    qtbot.keyClick(window.composer, Qt.Key.Key_Return)


def wait_reply(qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        pass


def test_enter_sends_reply_streams_into_view_and_is_stored(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    conversation_id = window.current_id
    assert conversation_id is not None, "a chat is ready on first start"
    changed_rows: list[int] = []
    window.messages.dataChanged.connect(lambda top, _bottom, _roles=None:
                                        changed_rows.append(top.row()))
    resets: list[bool] = []
    window.messages.modelReset.connect(lambda: resets.append(True))

    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        send(qtbot, window, "What is the capital of France?")
        assert window.composer.toPlainText() == "", "the composer clears on send"
    message = done.args[1]
    assert message is not None and message.role == Role.ASSISTANT and message.content

    rows = [window.messages.row_at(i) for i in range(window.messages.rowCount())]
    assert [r.role for r in rows if r] == [Role.USER, Role.ASSISTANT]
    assert rows[1] is not None and rows[1].content == message.content
    assert not rows[1].streaming
    # Streaming touched only the reply's row, never rebuilt the list.
    assert changed_rows and set(changed_rows) == {1}
    assert not resets

    stored = window.store.messages(conversation_id)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT]
    assert stored[0].content == "What is the capital of France?"
    assert stored[1].stats.completion_tokens and stored[1].stats.tokens_per_s
    assert stored[1].model_id == "smollm2-135m-instruct-q4_1"
    assert "tokens/s" in window.status_speed.text()
    # The first message names the chat.
    assert window.store.get_conversation(conversation_id).title.startswith("What is the capital")


def test_shift_enter_adds_a_line_instead_of_sending(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    qtbot.keyClicks(window.composer, "first")
    qtbot.keyClick(window.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer, "second")
    assert window.composer.toPlainText() == "first\nsecond"
    assert window.store.messages(window.current_id) == []


def test_stop_keeps_the_partial_reply_marked_stopped(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window(replace(SHORT, max_tokens=1500, temperature=0.9, repeat_penalty=1.0))
    send(qtbot, window, "Write a very long story about a lighthouse keeper.")
    assert window.send_button.text() == "Stop"
    qtbot.waitUntil(lambda: window.messages.streaming_row is not None
                    and len(window.messages.row_at(window.messages.streaming_row).content) > 10,
                    timeout=WAIT_MS)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    message = done.args[1]
    assert message is not None
    assert message.stats.finish_reason == FinishReason.STOPPED
    assert message.stats.completion_tokens < 1500
    stored = window.store.messages(window.current_id)
    assert stored[-1].stats.finish_reason == FinishReason.STOPPED
    assert stored[-1].content == message.content
    assert window.send_button.text() == "Send"


def test_escape_stops_generation(qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window(replace(SHORT, max_tokens=1500, repeat_penalty=1.0))
    send(qtbot, window, "List every country in the world with its capital.")
    qtbot.waitUntil(lambda: window.messages.streaming_row is not None, timeout=WAIT_MS)
    assert window.stop_action.isEnabled()
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        window.stop_action.trigger()  # bound to Esc
    assert window.store.messages(window.current_id)[-1].stats.finish_reason in (
        FinishReason.STOPPED, None) or len(window.store.messages(window.current_id)) == 1


def test_two_chats_switch_and_survive_a_restart(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    first = window.current_id
    send(qtbot, window, "Hello from the first chat")
    wait_reply(qtbot, window)
    window.new_conversation()
    second = window.current_id
    assert second != first
    assert window.messages.rowCount() == 0
    send(qtbot, window, "Hello from the second chat")
    wait_reply(qtbot, window)

    window.select_conversation(first)
    assert window.current_id == first
    assert window.messages.row_at(0).content == "Hello from the first chat"
    window.select_conversation(second)
    assert window.messages.row_at(0).content == "Hello from the second chat"

    window.close()
    window.inference.shutdown()
    window.store.close()

    again = make_window()
    titles = {again.conversations.index(i).data() for i in range(again.conversations.rowCount())}
    assert titles == {"Hello from the first chat", "Hello from the second chat"}
    assert again.current_id == second, "the last open conversation is restored"
    assert [again.messages.row_at(i).role for i in range(again.messages.rowCount())] == [
        Role.USER, Role.ASSISTANT]


def test_rename_in_place_and_delete(qtbot: QtBot, make_window: Callable[..., MainWindow],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    first = window.current_id
    window.new_conversation()
    second = window.current_id
    index = window.conversations.index(window.conversations.row_of(second))
    assert window.conversations.setData(index, "  Trip   plans ")
    assert window.store.get_conversation(second).title == "Trip plans"
    assert window.title_label.text() == "Trip plans"

    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.delete_current()
    assert window.store.get_conversation(second) is None
    assert window.conversations.row_of(second) is None
    assert window.current_id == first


def test_chat_settings_are_saved_per_conversation(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    panel = window.settings_panel
    assert panel.isEnabled()
    panel.temperature.setValue(0.25)
    panel.system_prompt.setPlainText("Answer like a pirate.")
    panel.flush()
    conversation = window.store.get_conversation(window.current_id)
    assert conversation.params.temperature == pytest.approx(0.25)
    assert conversation.system_prompt == "Answer like a pirate."
    window.new_conversation()
    assert panel.temperature.value() == pytest.approx(SHORT.temperature)


def test_unknown_model_shows_a_banner_and_stores_nothing(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    def resolver(model_id: str | None, n_ctx: int) -> ModelSpec:
        raise LookupError("The model 'nope' is not installed.")

    window = make_window(resolver=resolver)
    send(qtbot, window, "Hello?")
    assert window.banner.isVisible()
    assert "not installed" in window.banner.label.text()
    assert window.store.messages(window.current_id) == []


def test_broken_model_file_fails_with_reason_and_keeps_the_question(
        qtbot: QtBot, make_window: Callable[..., MainWindow], tmp_path: object) -> None:
    from pathlib import Path

    from llamadesk.services.engine import LoadOptions

    bad = Path(str(tmp_path)) / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 200)

    def resolver(model_id: str | None, n_ctx: int) -> ModelSpec:
        return ModelSpec(str(bad), "broken", LoadOptions(n_ctx=512, n_threads=1))

    window = make_window(resolver=resolver)
    with qtbot.waitSignal(window.controller.reply_failed, timeout=WAIT_MS) as failed:
        send(qtbot, window, "Are you there?")
    assert "broken.gguf" in failed.args[1]
    assert window.banner.isVisible()
    stored = window.store.messages(window.current_id)
    assert [m.role for m in stored] == [Role.USER], "the question is kept, no fake reply"
    assert window.messages.streaming_row is None


def test_long_conversation_opens_on_its_latest_page_and_loads_older(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    conversation_id = window.current_id
    for i in range(300):
        window.store.add_message(conversation_id, Role.USER if i % 2 == 0 else Role.ASSISTANT,
                                 f"message {i}")
    window.open_conversation(conversation_id)
    shown = window.messages.rowCount()
    assert 0 < shown < 300
    assert window.messages.row_at(shown - 1).content == "message 299"
    assert window.messages.has_older
    added = window.messages.load_older()
    assert added > 0 and window.messages.rowCount() == shown + added
    assert window.messages.row_at(0).content == f"message {300 - shown - added}"
    assert window.messages.index(0) != QModelIndex()


def variant_of(model: object, dest: object) -> object:
    """A second, different model file: the bundled one with one weight nibble changed
    (the registry refuses a file it already has)."""
    import shutil
    from pathlib import Path

    target = Path(str(dest))
    shutil.copyfile(str(model), target)
    with target.open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)[0]
        fh.seek(-1, 2)
        fh.write(bytes([last ^ 0x01]))
    return target


def test_switch_model_mid_chat_from_the_header(
        qtbot: QtBot, make_window: Callable[..., MainWindow], bundled_model_path: object,
        tmp_path: Path) -> None:
    window = make_window()
    other = window.ctx.registry.import_file(variant_of(bundled_model_path, tmp_path / "v.gguf"),
                                            link=True, name="Second model")
    window.refresh_models()
    assert window.model_picker.count() == 2
    assert window.model_picker.currentData() == "smollm2-135m-instruct-q4_1"

    send(qtbot, window, "First question")
    wait_reply(qtbot, window)
    index = window.model_picker.findData(other.id)
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS) as loaded:
        window.model_picker.setCurrentIndex(index)
        window.model_picker.activated.emit(index)
    assert loaded.args[0].model_id == other.id
    assert window.store.get_conversation(window.current_id).model_id == other.id
    assert "Second model" in window.status_model.text()

    send(qtbot, window, "Second question")
    wait_reply(qtbot, window)
    replies = [m for m in window.store.messages(window.current_id) if m.role == Role.ASSISTANT]
    assert [m.model_id for m in replies] == ["smollm2-135m-instruct-q4_1", other.id]
    # New chats start on the model picked last.
    window.new_conversation()
    assert window.model_picker.currentData() == other.id


def test_a_model_whose_file_is_gone_fails_clearly(
        qtbot: QtBot, make_window: Callable[..., MainWindow], bundled_model_path: object,
        tmp_path: Path) -> None:
    copy = variant_of(bundled_model_path, tmp_path / "copy.gguf")
    window = make_window()
    entry = window.ctx.registry.import_file(copy, link=True, name="Vanishing model")
    window.refresh_models()
    window.store.update_conversation(window.current_id, model_id=entry.id)
    copy.unlink()
    window.refresh_models()
    assert "file missing" in window.model_picker.currentText()
    send(qtbot, window, "Anyone there?")
    assert window.banner.isVisible() and "is gone" in window.banner.label.text()
    assert window.store.messages(window.current_id) == []


def test_models_window_is_built_on_first_use_and_lists_the_bundled_model(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    assert window.models_window is None, "nothing of the model manager starts with the app"
    window.show_models()
    assert window.models_window is not None and window.models_window.isVisible()
    installed = window.models_window.page.installed
    names = [installed.topLevelItem(i).text(0) for i in range(installed.topLevelItemCount())]
    assert names == ["SmolLM2 135M Instruct (Q4_1)"]


def test_search_across_chats_opens_the_matching_conversation(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    first = window.current_id
    window.store.add_message(first, Role.USER, "We talked about alpacas and their wool.")
    window.new_conversation()
    second = window.current_id
    window.store.add_message(second, Role.USER, "Something else entirely: lighthouses.")
    assert window.current_id == second

    qtbot.keyClicks(window.search_box, "alpac")
    qtbot.waitUntil(lambda: window.sidebar_stack.currentWidget() is window.results_view,
                    timeout=5_000)
    assert window.search_results.rowCount() == 1
    hit = window.search_results.index(0)
    assert "alpacas" in hit.data()
    window.results_view.activated.emit(hit)
    assert window.current_id == first
    assert window.messages.row_at(0).content.startswith("We talked about alpacas")

    window.search_box.clear()
    qtbot.waitUntil(lambda: window.sidebar_stack.currentWidget() is window.conversation_view,
                    timeout=5_000)


def test_regenerate_and_edit_keep_every_version(
        qtbot: QtBot, make_window: Callable[..., MainWindow],
        monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window(replace(SHORT, temperature=1.0, seed=-1, max_tokens=12))
    send(qtbot, window, "Name a fruit.")
    wait_reply(qtbot, window)
    first_reply = window.store.messages(window.current_id)[-1]

    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        window.message_view.regenerate_requested.emit(first_reply.id)
        # While the new version is written, the old one is not on screen.
        assert window.messages.rowCount() in (1, 2)
    second_reply = done.args[1]
    assert second_reply.id != first_reply.id and second_reply.parent_id == first_reply.parent_id
    shown = [window.messages.row_at(i) for i in range(window.messages.rowCount())]
    assert [r.message_id for r in shown] == [first_reply.parent_id, second_reply.id]
    assert shown[1].alternatives == (2, 2)

    window.message_view.version_requested.emit(second_reply.id, -1)
    assert window.messages.row_at(1).message_id == first_reply.id
    assert window.messages.row_at(1).alternatives == (1, 2)

    question = window.store.get_message(first_reply.parent_id)
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getMultiLineText",
                        lambda *a, **k: ("Name a vegetable.", True))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        window.message_view.edit_requested.emit(question.id)
    branch = window.store.messages(window.current_id)
    assert branch[0].content == "Name a vegetable."
    assert window.messages.row_at(0).alternatives == (2, 2)
    # Nothing was lost: the original question and both replies are still stored.
    assert window.store.get_message(question.id) is not None
    assert window.store.get_message(first_reply.id) is not None
    assert window.store.get_message(second_reply.id) is not None


def test_switching_away_and_back_during_a_reply_shows_the_text_so_far(
        qtbot: QtBot, make_window: Callable[..., MainWindow]) -> None:
    window = make_window(replace(SHORT, max_tokens=400, repeat_penalty=1.0))
    first = window.current_id
    send(qtbot, window, "Write a long story about a lighthouse.")
    qtbot.waitUntil(lambda: len(window.controller.live_text(first)) > 5, timeout=WAIT_MS)
    window.new_conversation()
    assert window.messages.streaming_row is None, "the other chat shows no reply"
    window.select_conversation(first)
    row = window.messages.row_at(window.messages.streaming_row)
    assert row is not None and row.streaming
    assert window.controller.live_text(first).startswith(row.content[:5])
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        window.stop()
    assert window.messages.row_at(window.messages.rowCount() - 1).content == done.args[1].content


def test_export_chat_as_markdown(qtbot: QtBot, make_window: Callable[..., MainWindow],
                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QFileDialog

    window = make_window()
    window.store.add_message(window.current_id, Role.USER, "Hello export")
    window.store.rename_conversation(window.current_id, "Export: test/1")
    window.open_conversation(window.current_id)
    target = tmp_path / "out.md"
    asked: list[str] = []

    def fake_dialog(_parent: object, _title: str, suggested: str, _filter: str) -> tuple[str, str]:
        asked.append(suggested)
        return str(target), "Markdown (*.md)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    window.export_current()
    assert asked and asked[0].endswith("Export test 1.md"), "a safe file name is suggested"
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Export: test/1") and "## You\n\nHello export" in text
