"""The chat pane's own behaviour, in the real window on FakeInferenceService (the real
model's path through the pane is tested in test_main_window.py)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from fake_inference import TICK_MS, FakeReply
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.core.conversation import FinishReason, Role
from llamadesk.services.inference import ModelSpec
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_model import MessageRole
from llamadesk.ui.message_view import header_text

WAIT_MS = 10_000


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    qtbot.keyClicks(window.chat.composer, text)
    qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)


def test_a_reply_streams_in_batches_into_one_row_and_names_its_model(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    chat = window.chat
    fake_of(window).script(FakeReply("one two three four five six seven", words_per_batch=2))
    batches: list[str] = []
    window.controller.reply_text.connect(lambda _cid, text: batches.append(text))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        send(qtbot, window, "Count, please.")
        assert chat.send_button.text() == "Stop"
    assert batches == ["one two", " three four", " five six", " seven"]
    assert done.args[1].content == "one two three four five six seven"
    assert chat.send_button.text() == "Send"
    reply = chat.messages.index(1).data(MessageRole.MESSAGE)
    assert header_text(reply, window.ctx.names).startswith(
        "SmolLM2 135M Instruct (Q4_1) · 123.0 tokens/s · 7 tokens")
    assert "123.0 tokens/s" in window.status.speed_label.text()


def test_shift_enter_adds_a_line_instead_of_sending(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    composer = window.chat.composer
    qtbot.keyClicks(composer, "first")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "second")
    assert composer.toPlainText() == "first\nsecond"
    assert window.store.messages(window.current_id) == []
    assert fake_of(window).requests == []


def test_chat_settings_are_saved_per_conversation_and_used_by_the_next_reply(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    panel = window.chat.settings_panel
    assert not panel.isVisible()
    window.chat.settings_button.click()
    assert panel.isVisible() and panel.isEnabled()
    panel.temperature.setValue(0.25)
    panel.system_prompt.setPlainText("Answer like a pirate.")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        send(qtbot, window, "Ahoy?")  # a send takes edits that are still pending
    conversation = window.store.get_conversation(window.current_id)
    assert conversation.params.temperature == pytest.approx(0.25)
    assert conversation.system_prompt == "Answer like a pirate."
    request, _model = fake_of(window).requests[-1]
    assert request.system_prompt == "Answer like a pirate."
    assert request.params.temperature == pytest.approx(0.25)
    window.new_conversation()
    assert panel.temperature.value() == pytest.approx(SHORT.temperature)


def test_unknown_model_shows_a_banner_and_stores_nothing(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    def resolve(model_id: str | None, n_ctx: int) -> ModelSpec:
        raise LookupError("The model 'nope' is not installed.")

    window = fake_window(resolve=resolve)
    window.chat.banner.hide()
    send(qtbot, window, "Hello?")
    assert window.chat.banner.isVisible()
    assert "not installed" in window.chat.banner.label.text()
    assert window.store.messages(window.current_id) == []
    assert fake_of(window).requests == []


def test_a_failed_reply_shows_its_reason_and_keeps_the_question(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script(FakeReply("half a", fail="The model ran out of memory."))
    with qtbot.waitSignal(window.controller.reply_failed, timeout=WAIT_MS):
        send(qtbot, window, "Go on.")
    assert window.chat.banner.isVisible()
    assert "ran out of memory" in window.chat.banner.label.text()
    assert [m.role for m in window.store.messages(window.current_id)] == [Role.USER]
    assert window.chat.messages.streaming_row is None
    assert window.chat.send_button.text() == "Send"


def test_a_model_that_fails_to_load_says_why(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    qtbot.waitUntil(lambda: window.inference.model_info is not None, timeout=WAIT_MS)
    fake_of(window).fail_loading("smollm2-135m-instruct-q4_1", "not enough memory")
    with qtbot.waitSignal(window.inference.model_load_failed, timeout=WAIT_MS):
        window.chat.preload_model()
    assert "could not be loaded: not enough memory" in window.chat.banner.label.text()
    assert window.status.model_label.text() == "No model"
    assert window.status.state_label.text() == "No model loaded"


def test_long_conversation_opens_on_its_latest_page_and_loads_older(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    messages = window.chat.messages
    conversation_id = window.current_id
    for i in range(300):
        window.store.add_message(conversation_id, Role.USER if i % 2 == 0 else Role.ASSISTANT,
                                 f"message {i}")
    window.open_conversation(conversation_id)
    shown = messages.rowCount()
    assert 0 < shown < 300
    assert messages.row_at(shown - 1).content == "message 299"
    assert messages.has_older
    added = messages.load_older()
    assert added > 0 and messages.rowCount() == shown + added
    assert messages.row_at(0).content == f"message {300 - shown - added}"
    assert messages.index(0) != QModelIndex()


def test_older_pages_are_read_from_the_store_up_to_the_first_message(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    messages = window.chat.messages
    store = window.store
    cid = window.current_id
    ids = [store.add_message(cid, Role.USER if i % 2 == 0 else Role.ASSISTANT,
                             f"message {i}").id for i in range(400)]
    # An old question answered twice, and the model's memory starting further up.
    store.add_message(cid, Role.ASSISTANT, "message 11 again", parent_id=ids[10])
    store.show_branch(ids[11])
    store.set_memory_start(ids[20])
    window.open_conversation(cid)
    assert messages.rowCount() < 400
    assert messages.row_at(messages.rowCount() - 1).content == "message 399"
    assert messages.row_at(0).content != "message 0"
    reads: list[int] = []
    store_before = store.branch_before
    store.branch_before = lambda mid, n: reads.append(mid) or store_before(mid, n)  # type: ignore[method-assign]
    assert window.chat.scroll_to_message(ids[0])
    assert reads, "older pages came from the store"
    assert [messages.row_at(i).content for i in range(3)] == [
        "message 0", "message 1", "message 2"]
    assert messages.rowCount() == 400 and not messages.has_older
    assert messages.row_at(11).alternatives == (1, 2)
    assert messages.row_at(10).alternatives is None
    assert [i for i in range(400) if messages.row_at(i).memory_start] == [20]
    assert messages.load_older() == 0


def test_switching_away_and_back_during_a_reply_shows_the_text_so_far(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window(replace(SHORT, max_tokens=400))
    fake_of(window).script(FakeReply.long())
    messages = window.chat.messages
    first = window.current_id
    send(qtbot, window, "Write a long story about a lighthouse.")
    qtbot.waitUntil(lambda: len(window.controller.live_text(first)) > 5, timeout=WAIT_MS)
    window.new_conversation()
    assert messages.streaming_row is None, "the other chat shows no reply"
    assert window.chat.send_button.text() == "Send"
    window.select_conversation(first)
    row = messages.row_at(messages.streaming_row)
    assert row is not None and row.streaming
    assert window.controller.live_text(first).startswith(row.content[:5])
    assert window.chat.send_button.text() == "Stop"
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        window.chat.stop()
    assert messages.row_at(messages.rowCount() - 1).content == done.args[1].content
    assert done.args[1].stats.finish_reason == FinishReason.STOPPED


def test_a_second_chat_waits_for_the_first_reply_and_both_are_stored(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script(FakeReply("first answer " * 10), FakeReply("second answer"))
    first = window.current_id
    send(qtbot, window, "One")
    window.new_conversation()
    second = window.current_id
    finished: list[int] = []
    window.controller.reply_finished.connect(lambda cid, _m: finished.append(cid))
    send(qtbot, window, "Two")
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=WAIT_MS)
    assert finished == [first, second], "replies are written one after another, in order"
    assert window.store.messages(first)[-1].content.startswith("first answer")
    assert window.store.messages(second)[-1].content == "second answer"


def test_sending_with_no_chat_open_starts_one(qtbot: QtBot,
                                              fake_window: WindowFactory) -> None:
    window = fake_window()
    before = window.store.count_conversations()
    window.chat.show_conversation(None)
    assert window.current_id is None and window.chat.title_label.text() == ""
    assert not window.chat.settings_panel.isEnabled()
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        send(qtbot, window, "Hello from nowhere")
    assert window.store.count_conversations() == before + 1
    assert window.store.messages(window.current_id)[0].content == "Hello from nowhere"


def test_an_opened_chat_has_its_branch_read_off_the_gui_thread_for_its_first_send(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    store = window.store
    cid = store.create_conversation("A long chat").id
    for i in range(40):
        store.add_message(cid, Role.USER, f"question {i}")
        store.add_message(cid, Role.ASSISTANT, f"answer {i}")
    branches = window.controller.session.branches
    offered_on: list[str] = []
    offer = branches.offer

    def recorded_offer(conversation_id: int, branch: list) -> None:  # type: ignore[type-arg]
        offered_on.append(threading.current_thread().name)
        offer(conversation_id, branch)

    branches.offer = recorded_offer  # type: ignore[method-assign]
    window.sidebar.conversations.refresh(cid)
    window.select_conversation(cid)
    assert window.current_id == cid
    qtbot.waitUntil(lambda: bool(offered_on), timeout=WAIT_MS)
    assert offered_on[0].startswith("llamadesk-checkpoints")
    fake_of(window).script(FakeReply("fine"))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        send(qtbot, window, "And now?")
    assert branches.last_read == "reused"
    request, _model = fake_of(window).requests[-1]
    assert [m.id for m in request.history] == [m.id for m in store.messages(cid)][:-1]


def test_the_reply_row_comes_after_the_sends_turn_with_its_models_name(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    """The reply starts a few ms after the send: its row is added with its first text
    (or ``REPLY_ROW_MS`` later), not laid out and painted again in the send's frame."""
    window = fake_window()
    chat = window.chat
    at_start: list[int | None] = []
    at_text: list[object] = []
    window.controller.reply_started.connect(lambda _cid: at_start.append(
        chat.messages.streaming_row))
    window.controller.reply_text.connect(lambda _cid, _text: at_text.append(
        chat.messages.row_at(chat.messages.rowCount() - 1)))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        send(qtbot, window, "Hello?")
    assert at_start == [None]
    first = at_text[0]
    assert getattr(first, "streaming", False) and getattr(first, "model_id", None)
    assert [chat.messages.row_at(i).role for i in range(2)] == [Role.USER, Role.ASSISTANT]


def test_a_regenerated_reply_row_names_its_model(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    """A regenerate shows the chat again before the reply starts, with a live row that
    names no model yet; the reply's start names it on that row."""
    window = fake_window()
    chat = window.chat
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        send(qtbot, window, "Hello?")
    reply = window.store.messages(window.current_id)[-1]
    seen: list[object] = []
    window.controller.reply_text.connect(lambda _cid, _text: seen.append(
        chat.messages.row_at(chat.messages.rowCount() - 1)))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        assert chat.regenerate(reply.id)
    assert reply.model_id
    assert seen and all(getattr(row, "model_id", None) == reply.model_id for row in seen)


def test_a_reply_slow_to_write_its_first_words_shows_its_row_meanwhile(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    chat = window.chat
    fake_of(window)._timer.setInterval(400)  # a long prompt: the first words come late
    texts: list[str] = []
    window.controller.reply_text.connect(lambda _cid, text: texts.append(text))
    send(qtbot, window, "Hello?")
    with qtbot.waitSignal(window.controller.reply_started, timeout=WAIT_MS):
        pass
    qtbot.waitUntil(lambda: chat.messages.streaming_row is not None, timeout=WAIT_MS)
    assert texts == [], "the row came before any text"
    fake_of(window)._timer.setInterval(TICK_MS)  # the rest of the reply: no need to wait
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        pass
    assert chat.messages.rowCount() == 2


def test_a_question_the_disk_did_not_confirm_is_said_in_the_banner_and_stays(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from llamadesk.services import reply_checkpoints

    def refused(_database: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(reply_checkpoints, "sync_log", refused)
    window = fake_window()
    with qtbot.waitSignal(window.controller.sync_failed, timeout=WAIT_MS):
        send(qtbot, window, "Is this kept?")
    assert window.chat.banner.isVisible()
    assert "did not confirm" in window.chat.banner.label.text()
    assert window.chat.messages.row_at(0).content == "Is this kept?"
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=WAIT_MS)  # the reply goes on
    assert window.store.messages(window.current_id)[0].content == "Is this kept?"


def _open_another_chat(qtbot: QtBot, window: MainWindow) -> int:
    first = window.current_id
    window.new_conversation()
    qtbot.waitUntil(lambda: window.current_id not in (first, None), timeout=WAIT_MS)
    assert first is not None
    return first


def test_a_refused_sync_in_a_chat_not_on_screen_waits_for_that_chat_and_nothing_is_lost(
        qtbot: QtBot, fake_window: WindowFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from llamadesk.services import reply_checkpoints

    release, refusals = threading.Event(), [OSError(5, "Input/output error")]
    synced = reply_checkpoints.sync_log

    def held(database: Path) -> None:  # the question's sync is refused, the reply's not
        assert release.wait(30), "the test released the syncs"
        if refusals:
            raise refusals.pop()
        synced(database)

    monkeypatch.setattr(reply_checkpoints, "sync_log", held)
    window = fake_window()
    notes: list[str] = []
    window.status.messageChanged.connect(notes.append)
    added: list[str] = []
    window.controller.message_added.connect(lambda message: added.append(message.content))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        send(qtbot, window, "Is this kept?")
    first = _open_another_chat(qtbot, window)
    with qtbot.waitSignal(window.controller.sync_failed, timeout=WAIT_MS) as failed:
        release.set()
    assert failed.args[0] == first
    # The reply's own sync covers the question too: both are announced as stored, and
    # the refusal is still kept for its chat.
    qtbot.waitUntil(lambda: len(added) == 2, timeout=WAIT_MS)
    assert added[0] == "Is this kept?"
    assert not window.chat.banner.isVisible(), "not said in a chat it is not about"
    title = window.store.get_conversation(first).title
    assert any(f"“{title}”" in note for note in notes), "the status bar names the chat"
    window.select_conversation(first)
    assert window.chat.banner.isVisible()
    assert "did not confirm" in window.chat.banner.label.text()
    assert window.chat.messages.row_at(0).content == "Is this kept?"
    stored = window.store.messages(first)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT], "both stay in the chat"
    assert stored[0].content == "Is this kept?"
    _open_another_chat(qtbot, window)
    window.select_conversation(first)
    assert not window.chat.banner.isVisible(), "said once, when the chat was opened"


def test_a_reply_that_fails_in_a_chat_not_on_screen_is_said_when_it_is_opened(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    fake_of(window).script(FakeReply(FakeReply.long(60).text, fail="the model crashed"))
    fake_of(window)._timer.setInterval(100)  # it fails once the other chat is open
    send(qtbot, window, "Tell me a long story.")
    first = _open_another_chat(qtbot, window)
    with qtbot.waitSignal(window.controller.reply_failed, timeout=WAIT_MS):
        pass
    assert not window.chat.banner.isVisible()
    window.select_conversation(first)
    assert window.chat.banner.isVisible()
    assert window.chat.banner.label.text() == "The reply failed: the model crashed"
