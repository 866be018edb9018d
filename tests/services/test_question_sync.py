"""The user's question and the reply are committed on the GUI thread without waiting for
the disk and synced by the writer thread: the question is shown at once, each is announced
as stored (``message_added``) only once synced, the question always before its reply; a
sync the disk refuses is said; closing waits for a queued sync. A real SQLite file;
FakeInferenceService writes the replies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_inference import FakeInferenceService, FakeReply
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Conversation, Message, Role, SamplingParams
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services import reply_checkpoints
from llamadesk.services.chat import ChatController
from llamadesk.services.resolver import make_resolver

WAIT_MS = 10_000


class HeldSync:
    """``sync_log`` as the writer thread calls it, held until released (or failing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.synced: list[Path] = []
        self.error: OSError | None = None
        original = reply_checkpoints.sync_log

        def held(database: Path) -> None:
            assert self.release.wait(30), "the test released the sync"
            if self.error is not None:
                raise self.error
            original(database)
            self.synced.append(database)

        monkeypatch.setattr(reply_checkpoints, "sync_log", held)


@pytest.fixture
def fake() -> Iterator[FakeInferenceService]:
    service = FakeInferenceService(tick_ms=300)  # no reply ends within the short waits
    # One batch (three ticks from start to end): the unscripted reply takes ten.
    service.script(FakeReply("A short reply.", words_per_batch=3))
    yield service
    service.shutdown()


@pytest.fixture
def controller(store: ConversationStore, fake: FakeInferenceService,
               bundled_model_path: Path) -> Iterator[ChatController]:
    settings = AppSettings(defaults=SamplingParams(max_tokens=4))
    made = ChatController(store, fake, make_resolver(lambda: settings))
    yield made
    made.checkpoints.shutdown()


def _record(controller: ChatController) -> list[tuple[str, Message]]:
    seen: list[tuple[str, Message]] = []
    controller.question_added.connect(lambda m: seen.append(("shown", m)))
    controller.message_added.connect(lambda m: seen.append(("stored", m)))
    return seen


def _held_chat(store: ConversationStore, controller: ChatController,
               monkeypatch: pytest.MonkeyPatch
               ) -> tuple[HeldSync, list[tuple[str, Message]], Conversation]:
    """A new chat, its syncs held and what the controller says recorded."""
    return HeldSync(monkeypatch), _record(controller), store.create_conversation()


def test_the_question_is_shown_at_once_and_announced_once_synced(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync, seen, conversation = _held_chat(store, controller, monkeypatch)
    question = controller.send(conversation.id, "Where is the harbour?")
    assert question is not None
    assert seen == [("shown", question)]
    # Committed: another connection reads it; the GUI connection syncs again by default.
    other = store.another_connection()
    try:
        assert [m.content for m in other.messages(conversation.id)] == ["Where is the harbour?"]
    finally:
        other.close()
    assert store.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    qtbot.wait(50)  # the writer waits on the held sync; the reply has not begun
    assert ("stored", question) not in seen, "not announced before its sync"
    with qtbot.waitSignal(controller.message_added, timeout=WAIT_MS):
        sync.release.set()
    assert seen[1] == ("stored", question)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
        pass  # the reply's own announcement follows, once
    assert sync.synced == [store.path]


def test_the_reply_is_committed_at_once_and_announced_after_its_question_once_synced(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync, seen, conversation = _held_chat(store, controller, monkeypatch)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        question = controller.send(conversation.id, "Name a fruit.")
    reply = done.args[1]
    assert isinstance(reply, Message) and reply.role == Role.ASSISTANT
    assert seen == [("shown", question)], "neither is announced before its sync"
    other = store.another_connection()  # committed: another connection reads both
    try:
        assert [m.id for m in other.messages(conversation.id)] == [question.id, reply.id]
    finally:
        other.close()
    assert store.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    with qtbot.waitSignals([controller.message_added] * 2, timeout=WAIT_MS):
        sync.release.set()
    assert seen == [("shown", question), ("stored", question), ("stored", reply)]
    assert sync.synced == [store.path, store.path]
    controller.checkpoints.shutdown()
    qtbot.wait(50)
    assert len(seen) == 3, "nothing is announced twice"


def test_a_reply_sync_the_disk_refuses_is_said_and_the_reply_stays(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync, seen, conversation = _held_chat(store, controller, monkeypatch)
    question = controller.send(conversation.id, "Name a colour.")
    with qtbot.waitSignal(controller.message_added, timeout=WAIT_MS):
        sync.release.set()  # the question's sync succeeds
    sync.error = OSError(28, "No space left on device")
    with qtbot.waitSignal(controller.sync_failed, timeout=WAIT_MS) as failed:
        pass  # the reply ends and its sync fails
    assert failed.args[0] == conversation.id and "No space left" in failed.args[1]
    assert [kind for kind, _m in seen] == ["shown", "stored"]
    assert seen[1][1] == question
    reply = store.messages(conversation.id)[-1]
    assert reply.role == Role.ASSISTANT, "the reply stays in the chat"
    assert store.states("draft:") == {}, "and its checkpoint is gone with it"


def test_a_sync_the_disk_refuses_is_said_and_the_question_stays(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync = HeldSync(monkeypatch)
    sync.error = OSError(5, "Input/output error")
    seen = _record(controller)
    conversation = store.create_conversation()
    question = controller.send(conversation.id, "Still there?")
    assert question is not None
    with qtbot.waitSignal(controller.sync_failed, timeout=WAIT_MS) as failed:
        sync.release.set()
    assert failed.args[0] == conversation.id
    assert "did not confirm" in failed.args[1] and "Input/output error" in failed.args[1]
    assert "Still there?" not in failed.args[1], "no message text in the sentence"
    assert ("stored", question) not in seen
    assert store.messages(conversation.id)[0].content == "Still there?"
    # The reply's own sync covers the log: the question is announced then, first.
    sync.error = None
    with qtbot.waitSignals([controller.message_added] * 2, timeout=WAIT_MS):
        pass
    assert [(kind, m.role) for kind, m in seen] == [
        ("shown", Role.USER), ("stored", Role.USER), ("stored", Role.ASSISTANT)]
    assert seen[1][1] == question


def test_closing_waits_for_a_queued_sync(
        store: ConversationStore, controller: ChatController,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync = HeldSync(monkeypatch)
    conversation = store.create_conversation()
    controller.send(conversation.id, "One more thing.")
    threading.Timer(0.2, sync.release.set).start()
    controller.checkpoints.shutdown()
    assert sync.synced == [store.path]


def test_closing_waits_for_a_reply_sync(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sync = HeldSync(monkeypatch)
    conversation = store.create_conversation()
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
        controller.send(conversation.id, "And then?")
    threading.Timer(0.2, sync.release.set).start()
    controller.checkpoints.shutdown()
    assert sync.synced == [store.path, store.path]


def test_after_shutdown_a_sync_runs_at_once(store: ConversationStore,
                                            controller: ChatController) -> None:
    controller.checkpoints.shutdown()
    results: list[str | None] = []
    controller.checkpoints.sync(store.path, results.append)
    assert results == [None]


def test_a_sync_that_ends_as_the_window_closes_announces_nothing(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its result arrives queued, after ``shutdown``: the store may be closed by then."""
    sync, seen, conversation = _held_chat(store, controller, monkeypatch)
    controller.send(conversation.id, "Goodbye.")
    sync.release.set()
    controller.checkpoints.shutdown()  # waits for the sync; its result is still queued
    assert sync.synced == [store.path]
    qtbot.wait(50)
    assert [kind for kind, _m in seen] == ["shown"]
