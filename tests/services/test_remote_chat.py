"""Chats through a real, independent OpenAI-compatible server: llama-cpp-python's own
(``python -m llama_cpp.server``) serving the bundled model on a loopback port, driven
through the real ChatController, inference service and SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from remote_fixtures import SERVED_MODEL, LlamaServer

from llamadesk.core import bundled
from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import FinishReason, Role, SamplingParams
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.remote import check_connection
from llamadesk.services.resolver import make_resolver

WAIT_MS = 180_000
REMOTE_ID = f"box/{SERVED_MODEL}"
PARAMS = SamplingParams(max_tokens=24, n_ctx=1024, seed=3, temperature=0.7)


@pytest.fixture
def settings(llama_server: LlamaServer) -> AppSettings:
    return AppSettings(defaults=PARAMS, connections=(Connection("box", llama_server.url),),
                       remote=RemoteSettings(read_timeout_s=120.0, max_retries=0))


@pytest.fixture
def inference(qtbot: QtBot) -> Iterator[InferenceService]:
    service = InferenceService()
    yield service
    service.shutdown()


@pytest.fixture
def controller(store: ConversationStore, inference: InferenceService,
               settings: AppSettings) -> ChatController:
    return ChatController(store, inference, make_resolver(lambda: settings))


def test_the_check_finds_the_served_model(llama_server: LlamaServer) -> None:
    result = check_connection(Connection("box", llama_server.url), None)
    assert result.ok and result.models == (SERVED_MODEL,)


def test_a_remote_reply_streams_into_the_conversation(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    conversation = store.create_conversation(model_id=REMOTE_ID, params=PARAMS,
                                             system_prompt="Answer briefly.")
    streamed: list[str] = []
    controller.reply_text.connect(lambda _c, text: streamed.append(text))
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        question = controller.send(conversation.id, "Name a colour.")
    reply = done.args[1]
    assert question is not None and reply is not None
    assert reply.model_id == REMOTE_ID and reply.parent_id == question.id
    assert reply.content and reply.content == "".join(streamed).strip()
    assert reply.stats.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert [m.id for m in store.messages(conversation.id)] == [question.id, reply.id]


def test_stop_mid_stream_keeps_the_partial_reply(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    params = SamplingParams(max_tokens=400, n_ctx=1024, seed=4, temperature=0.9,
                            repeat_penalty=1.0)
    conversation = store.create_conversation(model_id=REMOTE_ID, params=params)
    with qtbot.waitSignal(controller.reply_text, timeout=WAIT_MS):
        controller.send(conversation.id, "Write a long story about a lighthouse keeper.")
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.stop(conversation.id)
    reply = done.args[1]
    assert reply is not None and reply.content
    assert reply.stats.finish_reason == FinishReason.STOPPED
    assert (reply.stats.completion_tokens or 0) < 400


def test_regenerate_keeps_both_versions(
        store: ConversationStore, controller: ChatController, qtbot: QtBot) -> None:
    conversation = store.create_conversation(model_id=REMOTE_ID, params=PARAMS)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as first:
        controller.send(conversation.id, "Say something about rain.")
    old = first.args[1]
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as second:
        assert controller.regenerate(old.id)
    new = second.args[1]
    assert new.id != old.id and new.parent_id == old.parent_id
    assert new.model_id == old.model_id == REMOTE_ID
    assert store.messages(conversation.id)[-1].id == new.id
    assert store.get_message(old.id) is not None, "the old version stays"


def test_one_chat_switches_between_the_local_and_the_remote_model(
        store: ConversationStore, controller: ChatController, inference: InferenceService,
        qtbot: QtBot, bundled_model_path: Path) -> None:
    conversation = store.create_conversation(params=PARAMS)  # the bundled model
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
        controller.send(conversation.id, "Hello, who are you?")
    store.update_conversation(conversation.id, model_id=REMOTE_ID)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
        controller.send(conversation.id, "And what can you do?")
    store.update_conversation(conversation.id, model_id=bundled.manifest().id)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS):
        controller.send(conversation.id, "Thank you.")
    messages = store.messages(conversation.id)
    local = bundled.manifest().id
    assert [(m.role, m.model_id) for m in messages] == [
        (Role.USER, None), (Role.ASSISTANT, local), (Role.USER, None),
        (Role.ASSISTANT, REMOTE_ID), (Role.USER, None), (Role.ASSISTANT, local)]
    assert all(m.content for m in messages)
    assert inference.model_info is not None and inference.model_info.model_id == local, \
        "the local model stayed loaded while the remote one answered"
