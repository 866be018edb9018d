"""A reply being written is checkpointed, and a crashed run's checkpoint is kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import FinishReason, Role, SamplingParams
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services import chat
from llamadesk.services.chat import DRAFT_PREFIX, ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.resolver import make_resolver

WAIT_MS = 180_000


@pytest.fixture
def controller(store: ConversationStore, qtbot: QtBot,
               bundled_model_path: Path) -> Iterator[ChatController]:
    inference = InferenceService()
    settings = AppSettings(defaults=SamplingParams(max_tokens=40, n_ctx=1024, seed=2))
    yield ChatController(store, inference, make_resolver(lambda: settings))
    inference.shutdown()


def test_checkpoints_while_writing_and_clears_them_after(
        store: ConversationStore, controller: ChatController, qtbot: QtBot,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint is committed by its own thread: the GUI thread's connection
    writes no checkpoint, and the stored reply takes the checkpoint's place."""
    monkeypatch.setattr(chat, "CHECKPOINT_INTERVAL_S", 0.0)
    conversation = store.create_conversation(params=SamplingParams(
        max_tokens=400, seed=3, n_ctx=1024, temperature=0.9, repeat_penalty=1.0))
    statements: list[str] = []
    store.connection.set_trace_callback(statements.append)
    with qtbot.waitSignal(controller.reply_text, timeout=WAIT_MS):
        question = controller.send(conversation.id, "Write a long story about the sea.")
    assert question is not None
    # While the reply streams, its checkpoint appears in the store.
    qtbot.waitUntil(lambda: bool(store.states(DRAFT_PREFIX)), timeout=WAIT_MS)
    (draft,) = (json.loads(v) for v in store.states(DRAFT_PREFIX).values())
    assert draft["parent_id"] == question.id and draft["text"]
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.stop(conversation.id)
    store.connection.set_trace_callback(None)
    assert not [s for s in statements if "app_state" in s and "INSERT" in s], (
        "no checkpoint was committed on the GUI thread")
    assert store.states(DRAFT_PREFIX) == {}, "a stored reply leaves no checkpoint"
    assert done.args[1].content.startswith(str(draft["text"]).strip()[:5])
    controller.checkpoints.shutdown()
    assert store.states(DRAFT_PREFIX) == {}, "nothing written after the reply was stored"


def test_a_crashed_runs_checkpoint_becomes_an_interrupted_reply(
        store: ConversationStore, controller: ChatController) -> None:
    conversation = store.create_conversation()
    question = store.add_message(conversation.id, Role.USER, "Tell me a story.")
    store.set_state(f"{DRAFT_PREFIX}7", json.dumps({
        "conversation_id": conversation.id, "parent_id": question.id,
        "model_id": "smollm2-135m-instruct-q4_1", "text": "Once upon a time, "}))
    store.set_state(f"{DRAFT_PREFIX}8", "{not json")
    recovered = controller.recover_interrupted()
    assert [m.content for m in recovered] == ["Once upon a time,"]
    reply = store.messages(conversation.id)[-1]
    assert reply.role == Role.ASSISTANT and reply.parent_id == question.id
    assert reply.stats.finish_reason == FinishReason.INTERRUPTED
    assert store.states(DRAFT_PREFIX) == {}, "every checkpoint is consumed, even a bad one"
    assert controller.recover_interrupted() == []


def test_a_chat_deleted_while_its_reply_is_written_still_ends_the_reply_once(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    """The window waits for every reply to end before it closes: a reply whose chat was
    deleted must end too, with nothing stored."""
    conversation = store.create_conversation(params=SamplingParams(
        max_tokens=60, seed=3, n_ctx=1024, temperature=0.9, repeat_penalty=1.0))
    finals: list[tuple[str, int, object]] = []
    controller.reply_finished.connect(lambda c, m: finals.append(("finished", c, m)))
    controller.reply_failed.connect(lambda c, r: finals.append(("failed", c, r)))
    with qtbot.waitSignal(controller.reply_text, timeout=WAIT_MS):
        controller.send(conversation.id, "Write a long story about a lighthouse keeper.")
    store.delete_conversation(conversation.id)
    qtbot.waitUntil(lambda: not controller.busy and not controller.inference.busy,
                    timeout=WAIT_MS)
    qtbot.wait(50)  # any second final signal would be queued by now
    assert finals == [("finished", conversation.id, None)]
    assert store.get_conversation(conversation.id) is None
    assert store.states(DRAFT_PREFIX) == {}


def test_the_memory_start_is_stored_and_announced_as_a_chat_outgrows_the_context(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    params = SamplingParams(max_tokens=8, seed=4, n_ctx=256)
    conversation = store.create_conversation(system_prompt="Be brief.", params=params)
    seen: list[tuple[int, int | None, int, int]] = []
    controller.context_changed.connect(lambda *args: seen.append(args))
    turn = 0
    while store.memory_start(conversation.id) is None:
        assert turn < 12, "a 256-token context overflows within a few turns"
        count_before = len(seen)
        with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
            controller.send(conversation.id, f"Question {turn}: describe a quiet harbour "
                            "town at dawn, its boats, its bakers and its gulls, in detail.")
        # Once when the reply starts (its prompt planned), once when it is stored.
        assert len(seen) == count_before + 2
        turn += 1
    start = store.memory_start(conversation.id)
    first = store.get_message(start or 0)
    assert first is not None and first.role == Role.USER
    cid, first_in_memory, used, n_ctx = seen[-1]
    assert (cid, first_in_memory, n_ctx) == (conversation.id, start, 256)
    assert 0 < used <= 256
    assert all(s[1] is None for s in seen[:-2]), "nothing was left out before"
    # Opening the chat again announces the stored start.
    with qtbot.waitSignal(controller.context_changed) as announced:
        controller.announce_context(conversation.id)
    assert announced.args[:2] == [conversation.id, start]
