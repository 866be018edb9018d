"""The window, offscreen. The paths a user depends on run on the real services,
llama.cpp and SQLite (``real_window``); what is only the window's own behaviour (menus,
restore, close, dialogs) runs on FakeInferenceService (``fake_window``)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from fake_inference import FakeReply
from model_files import variant_of
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.core.conversation import FinishReason, Role
from llamadesk.core.paths import app_paths
from llamadesk.services.engine import LoadOptions
from llamadesk.services.inference import ModelSpec
from llamadesk.ui.main_window import MainWindow

WAIT_MS = 180_000  # generous: the machine may be shared; the benchmark measures speed
FAKE_WAIT_MS = 10_000


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    qtbot.keyClicks(window.chat.composer, text)
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


def wait_reply(qtbot: QtBot, window: MainWindow, timeout: int = WAIT_MS) -> None:
    with qtbot.waitSignal(window.controller.reply_finished, timeout=timeout):
        pass


# -- the real path: llama.cpp and the bundled model ---------------------------------------
def test_enter_sends_reply_streams_into_view_and_is_stored(
        qtbot: QtBot, real_window: WindowFactory) -> None:
    window = real_window()
    chat = window.chat
    conversation_id = window.current_id
    assert conversation_id is not None, "a chat is ready on first start"
    changed_rows: list[int] = []
    chat.messages.dataChanged.connect(lambda top, _bottom, _roles=None:
                                      changed_rows.append(top.row()))
    resets: list[bool] = []
    chat.messages.modelReset.connect(lambda: resets.append(True))

    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        send(qtbot, window, "What is the capital of France?")
        assert chat.composer.toPlainText() == "", "the composer clears on send"
    message = done.args[1]
    assert message is not None and message.role == Role.ASSISTANT and message.content

    rows = [chat.messages.row_at(i) for i in range(chat.messages.rowCount())]
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
    assert "tokens/s" in window.status.speed_label.text()
    # The first message names the chat.
    assert window.store.get_conversation(conversation_id).title.startswith("What is the capital")


def test_stop_keeps_the_partial_reply_marked_stopped(
        qtbot: QtBot, real_window: WindowFactory) -> None:
    window = real_window(replace(SHORT, max_tokens=1500, temperature=0.9, repeat_penalty=1.0))
    chat = window.chat
    send(qtbot, window, "Write a very long story about a lighthouse keeper.")
    assert chat.send_button.text() == "Stop"
    qtbot.waitUntil(lambda: chat.messages.streaming_row is not None
                    and len(chat.messages.row_at(chat.messages.streaming_row).content) > 10,
                    timeout=WAIT_MS)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    message = done.args[1]
    assert message is not None
    assert message.stats.finish_reason == FinishReason.STOPPED
    assert message.stats.completion_tokens < 1500
    stored = window.store.messages(window.current_id)
    assert stored[-1].stats.finish_reason == FinishReason.STOPPED
    assert stored[-1].content == message.content
    assert chat.send_button.text() == "Send"


def test_two_chats_switch_and_survive_a_restart(
        qtbot: QtBot, real_window: WindowFactory) -> None:
    window = real_window()
    first = window.current_id
    send(qtbot, window, "Hello from the first chat")
    wait_reply(qtbot, window)
    window.new_conversation()
    second = window.current_id
    assert second != first
    assert window.chat.messages.rowCount() == 0
    send(qtbot, window, "Hello from the second chat")
    wait_reply(qtbot, window)

    window.select_conversation(first)
    assert window.current_id == first
    assert window.chat.messages.row_at(0).content == "Hello from the first chat"
    window.select_conversation(second)
    assert window.chat.messages.row_at(0).content == "Hello from the second chat"

    window.close()
    window.shutdown.finish()  # the app's own sequence: the writer thread stops
    # before the store closes (a reply's sync may still be on its way)

    again = real_window()
    titles = {again.sidebar.conversations.index(i).data()
              for i in range(again.sidebar.conversations.rowCount())}
    assert titles == {"Hello from the first chat", "Hello from the second chat"}
    assert again.current_id == second, "the last open conversation is restored"
    messages = again.chat.messages
    assert [messages.row_at(i).role for i in range(messages.rowCount())] == [
        Role.USER, Role.ASSISTANT]


def test_broken_model_file_fails_with_reason_and_keeps_the_question(
        qtbot: QtBot, real_window: WindowFactory, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 200)

    def resolve(model_id: str | None, n_ctx: int) -> ModelSpec:
        return ModelSpec(str(bad), "broken", LoadOptions(n_ctx=512, n_threads=1))

    window = real_window(resolve=resolve)
    with qtbot.waitSignal(window.controller.reply_failed, timeout=WAIT_MS) as failed:
        send(qtbot, window, "Are you there?")
    assert "broken.gguf" in failed.args[1]
    assert window.chat.banner.isVisible()
    stored = window.store.messages(window.current_id)
    assert [m.role for m in stored] == [Role.USER], "the question is kept, no fake reply"
    assert window.chat.messages.streaming_row is None


def test_switch_model_mid_chat_from_the_header(
        qtbot: QtBot, real_window: WindowFactory, bundled_model_path: object,
        tmp_path: Path) -> None:
    window = real_window()
    picker = window.chat.model_picker
    other = window.ctx.registry.import_file(variant_of(bundled_model_path, tmp_path / "v.gguf"),
                                            link=True, name="Second model")
    window.refresh_models()
    assert picker.count() == 2
    assert picker.currentData() == "smollm2-135m-instruct-q4_1"

    send(qtbot, window, "First question")
    wait_reply(qtbot, window)
    index = picker.findData(other.id)
    with qtbot.waitSignal(window.inference.model_loaded, timeout=WAIT_MS) as loaded:
        picker.setCurrentIndex(index)
        picker.activated.emit(index)
    assert loaded.args[0].model_id == other.id
    assert window.store.get_conversation(window.current_id).model_id == other.id
    assert "Second model" in window.status.model_label.text()

    send(qtbot, window, "Second question")
    wait_reply(qtbot, window)
    replies = [m for m in window.store.messages(window.current_id) if m.role == Role.ASSISTANT]
    assert [m.model_id for m in replies] == ["smollm2-135m-instruct-q4_1", other.id]
    # New chats start on the model picked last, and the choice was saved.
    window.new_conversation()
    assert picker.currentData() == other.id
    assert f'"model_id": "{other.id}"' in app_paths().settings_file.read_text()


def test_regenerate_and_edit_keep_every_version(
        qtbot: QtBot, real_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    window = real_window(replace(SHORT, temperature=1.0, seed=-1, max_tokens=12))
    chat = window.chat
    send(qtbot, window, "Name a fruit.")
    wait_reply(qtbot, window)
    first_reply = window.store.messages(window.current_id)[-1]

    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        chat.message_view.regenerate_requested.emit(first_reply.id)
        # While the new version is written, the old one is not on screen.
        on_screen = [chat.messages.row_at(i).message_id
                     for i in range(chat.messages.rowCount())]
        assert on_screen[0] == first_reply.parent_id and first_reply.id not in on_screen
    second_reply = done.args[1]
    assert second_reply.id != first_reply.id and second_reply.parent_id == first_reply.parent_id
    shown = [chat.messages.row_at(i) for i in range(chat.messages.rowCount())]
    assert [r.message_id for r in shown] == [first_reply.parent_id, second_reply.id]
    assert shown[1].alternatives == (2, 2)

    chat.message_view.version_requested.emit(second_reply.id, -1)
    assert chat.messages.row_at(1).message_id == first_reply.id
    assert chat.messages.row_at(1).alternatives == (1, 2)

    question = window.store.get_message(first_reply.parent_id)
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setattr(QInputDialog, "getMultiLineText",
                        lambda *a, **k: ("Name a vegetable.", True))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        chat.message_view.edit_requested.emit(question.id)
    branch = window.store.messages(window.current_id)
    assert branch[0].content == "Name a vegetable."
    assert chat.messages.row_at(0).alternatives == (2, 2)
    # Nothing was lost: the original question and both replies are still stored.
    assert window.store.get_message(question.id) is not None
    assert window.store.get_message(first_reply.id) is not None
    assert window.store.get_message(second_reply.id) is not None


# -- the window's own behaviour (FakeInferenceService) --------------------------------------
def test_escape_stops_generation(qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script(FakeReply.long())
    assert not window.stop_action.isEnabled()
    send(qtbot, window, "List every country in the world with its capital.")
    qtbot.waitUntil(lambda: window.chat.messages.streaming_row is not None
                    and bool(window.chat.messages.row_at(1).content), timeout=FAKE_WAIT_MS)
    assert window.stop_action.isEnabled()
    assert window.stop_action.shortcut().toString() == "Esc"
    with qtbot.waitSignal(window.controller.reply_finished, timeout=FAKE_WAIT_MS) as done:
        window.stop_action.trigger()
    assert done.args[1].stats.finish_reason == FinishReason.STOPPED
    assert window.store.messages(window.current_id)[-1].stats.finish_reason == (
        FinishReason.STOPPED)
    assert not window.stop_action.isEnabled()


def test_closing_during_a_reply_stores_the_partial_text_then_closes(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script(FakeReply.long())
    send(qtbot, window, "Tell me everything.")
    qtbot.waitUntil(lambda: len(window.controller.live_text(window.current_id)) > 20,
                    timeout=FAKE_WAIT_MS)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=FAKE_WAIT_MS) as done:
        window.close()
        assert window.isVisible(), "the window waits for the reply to be stored"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=FAKE_WAIT_MS)
    stored = window.store.messages(window.current_id)[-1]
    assert stored.role == Role.ASSISTANT and stored.content == done.args[1].content
    assert stored.stats.finish_reason == FinishReason.STOPPED and len(stored.content) > 20


def test_a_restart_restores_the_window_size_and_last_chat(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    first = window.current_id
    window.new_conversation()
    window.select_conversation(first)
    window.resize(700, 500)  # within the offscreen screen, which restoring keeps to
    window.close()
    window.shutdown.finish()  # the app's own sequence: the writer thread stops
    # before the store closes (a reply's sync may still be on its way)
    again = fake_window()
    assert again.current_id == first
    assert (again.width(), again.height()) == (700, 500)


def test_the_model_loaded_early_is_the_one_of_the_chat_restored(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    """The early load (services/engine_import.py) loads the model of the chat the
    window restores, not a new chat's, and the same file the window then asks for."""
    from llamadesk.services import engine_import

    config = app_paths().ensure().settings_file
    config.write_text('{"hardware": {"gpu_layers": "none"}}', encoding="utf-8")
    window = fake_window()
    bundled = window.ctx.resolver(None).path
    other = window.ctx.registry.import_file(variant_of(bundled, tmp_path / "v.gguf"),
                                            link=True, name="Second model")
    on_other = window.current_id
    window.store.update_conversation(on_other, model_id=other.id)
    window.new_conversation()  # a newer chat on the default model, not the one restored
    window.select_conversation(on_other)
    window.close()
    window.shutdown.finish()
    try:
        again = fake_window()
        assert again.current_id == on_other
        assert engine_import.model_to_load_first() == (str(other.path), 0)
        asked = again.ctx.resolver.chat_spec(again.chat.current_conversation())
        assert asked.path == str(other.path), "the window's own load: the same file"
        again.new_conversation()
        again.close()
        again.shutdown.finish()
        assert fake_window().current_id != on_other
        assert engine_import.model_to_load_first() == (bundled, 0)
    finally:
        engine_import.show_first(None)


def test_rename_in_place_and_delete(qtbot: QtBot, fake_window: WindowFactory,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    window = fake_window()
    conversations = window.sidebar.conversations
    first = window.current_id
    window.store.add_message(first, Role.USER, "Keep this until deleted")
    window.new_conversation()
    second = window.current_id
    index = conversations.index(conversations.row_of(second))
    assert conversations.setData(index, "  Trip   plans ")
    assert window.store.get_conversation(second).title == "Trip plans"
    assert window.chat.title_label.text() == "Trip plans"

    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.delete_current()
    assert window.store.get_conversation(second) is None
    assert conversations.row_of(second) is None
    assert window.current_id == first
    assert window.inference.forgotten == {second}, "the model's state of it goes too"
    window.delete_current()
    assert window.store.count_conversations() == 1 and conversations.rowCount() == 1
    assert window.current_id is not None, "deleting the last chat leaves a new one"
    assert window.store.messages(window.current_id) == [], "…and it is empty"
    assert window.chat.messages.rowCount() == 0


def test_models_window_is_built_on_first_use_and_lists_the_bundled_model(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    assert window.models_window is None, "nothing of the model manager starts with the app"
    window.show_models()
    assert window.models_window is not None and window.models_window.isVisible()
    installed = window.models_window.page.installed
    names = [installed.topLevelItem(i).text(0) for i in range(installed.topLevelItemCount())]
    assert names == ["SmolLM2 135M Instruct (Q4_1)"]


def test_an_unreadable_catalog_shows_in_the_banner_instead_of_the_models_window(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    window = fake_window()
    resources = tmp_path / "resources-broken"
    shutil.copytree(os.environ["LLAMADESK_RESOURCES"], resources)
    (resources / "catalog.json").write_text("{ not json", encoding="utf-8")
    monkeypatch.setenv("LLAMADESK_RESOURCES", str(resources))
    window.show_models()  # Ctrl+M
    assert window.models_window is None
    assert window.chat.banner.isVisible()
    assert "Models window cannot open" in window.chat.banner.label.text()


def test_preferences_that_cannot_be_saved_still_apply_and_say_so(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from llamadesk.ui import preferences

    window = fake_window()
    config = app_paths().config_dir
    shutil.rmtree(config)
    config.write_text("a file where the config folder should be")
    wanted = replace(window.ctx.settings.current,
                     defaults=replace(window.ctx.settings.current.defaults, n_ctx=1024))
    monkeypatch.setattr(preferences.PreferencesDialog, "exec", lambda self: 1)
    monkeypatch.setattr(preferences.PreferencesDialog, "result_settings", lambda self: wanted)
    loads = len(fake_of(window).loads)
    window.show_preferences()  # saved off the GUI thread: the outcome comes back later
    qtbot.waitUntil(window.chat.banner.isVisible, timeout=FAKE_WAIT_MS)
    assert window.ctx.settings.current == wanted
    assert window.chat.settings_panel.defaults.n_ctx == 1024
    assert "could not be saved" in window.chat.banner.label.text()
    qtbot.waitUntil(lambda: len(fake_of(window).loads) > loads, timeout=FAKE_WAIT_MS)
    window.new_conversation()
    assert window.current_conversation().params.n_ctx == 1024, "new chats use them"


def test_export_chat_as_markdown(qtbot: QtBot, fake_window: WindowFactory,
                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QFileDialog

    window = fake_window()
    send(qtbot, window, "Hello export")
    wait_reply(qtbot, window, FAKE_WAIT_MS)
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
    # Replies are headed with the model's name (from the app's one table of names).
    assert "## SmolLM2 135M Instruct (Q4_1)\n\nFake reply" in text
