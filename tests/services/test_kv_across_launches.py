"""A chat's KV state kept across launches (services/kv_persist.py, core/store_kv.py),
on the bundled model through real llama.cpp and a real chat database: the chat the model
held at quit is continued by the next launch's engine reading only the new message, with
the reply a fresh engine gives; a state of other settings, or a damaged one, is read
again from the messages without an error."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_kv import KV_FILE, mark_of
from llamadesk.services.chat_session import ChatSession
from llamadesk.services.engine import GenerationRequest, GenerationResult, LlamaEngine, LoadOptions
from llamadesk.services.inference import InferenceService, ModelSpec
from llamadesk.services.kv_persist import StoreStates, fingerprint
from llamadesk.services.llama_runtime import build_identity

OPTIONS = LoadOptions(n_ctx=1024, n_threads=1)
GREEDY = SamplingParams(temperature=0.0, max_tokens=12, n_ctx=1024, seed=1)
WAIT_MS = 180_000
pytestmark = pytest.mark.timeout(600)


def launch(path: Path, store: ConversationStore | None,
           options: LoadOptions = OPTIONS) -> LlamaEngine:
    """An engine as a new process has it: nothing in memory; with ``store``, the kept
    states of the chat database."""
    saved = StoreStates(store.another_connection) if store is not None else None
    engine = LlamaEngine(16 * 1024 * 1024, saved)
    engine.load(path, options, model_id="bundled")
    return engine


def ask(engine: LlamaEngine, store: ConversationStore, cid: int,
        text: str) -> tuple[GenerationRequest, GenerationResult]:
    """Send ``text`` as the app does (stored, then answered and the reply stored)."""
    session = ChatSession(store)
    asked = session.add_question(cid, text).message
    conversation = store.get_conversation(cid)
    assert conversation is not None
    request = session.request(conversation, on_context=session.note_context)
    result = engine.generate(request, lambda _text: None, threading.Event())
    session.store_reply(cid, asked.id, result)
    return request, result


def kept(store: ConversationStore, chat: int, model: Path) -> tuple[int, ...] | None:
    """The tokens of the state kept for ``chat`` by ``model`` (as OPTIONS load it)."""
    epoch = mark_of(store, chat)
    if epoch is None:
        return None
    state = StoreStates(store.another_connection).load(
        str(chat), fingerprint(model, OPTIONS, build_identity()), epoch)
    return state.tokens if state is not None else None


@pytest.fixture
def chat(store: ConversationStore) -> int:
    return store.create_conversation(system_prompt="You are a friendly guide.",
                                     params=GREEDY).id


@pytest.fixture
def fresh(bundled_model_path: Path) -> Iterator[LlamaEngine]:
    """An engine with nothing kept: what every reply must equal."""
    engine = launch(bundled_model_path, None)
    yield engine
    engine.unload()


def first_launch(path: Path, store: ConversationStore, cid: int) -> tuple[int, ...]:
    """Two turns, then quit: returns the tokens the state kept holds."""
    engine = launch(path, store)
    try:
        ask(engine, store, cid, "Name three rivers in Europe.")
        ask(engine, store, cid, "Which of them is the longest?")
        held = tuple(engine.context_tokens())
        engine.keep_context()
    finally:
        engine.unload()
    return held


def test_a_chat_continued_after_a_relaunch_reads_only_the_new_message(
        bundled_model_path: Path, store: ConversationStore, chat: int,
        fresh: LlamaEngine) -> None:
    held = first_launch(bundled_model_path, store, chat)
    assert kept(store, chat, bundled_model_path) == held
    engine = launch(bundled_model_path, store)
    try:
        request, result = ask(engine, store, chat, "And the shortest?")
        prompt = engine.prompt_tokens(request)
        assert prompt[:len(held)] == list(held), "the new prompt continues the kept one"
        # Only the new message (and the last kept token, read again for fresh logits).
        assert engine.last_prompt_evaluated <= len(prompt) - len(held) + 1
    finally:
        engine.unload()
    expected = fresh.generate(request, lambda _text: None, threading.Event())
    assert fresh.last_prompt_evaluated == len(prompt)
    assert result.text == expected.text and result.text


def test_a_state_of_other_cache_settings_is_not_used(
        bundled_model_path: Path, store: ConversationStore, chat: int) -> None:
    first_launch(bundled_model_path, store, chat)
    engine = launch(bundled_model_path, store, replace(OPTIONS, kv_cache_type="f16"))
    try:
        request, _result = ask(engine, store, chat, "And the shortest?")
        assert engine.last_prompt_evaluated == len(engine.prompt_tokens(request))
    finally:
        engine.unload()


def test_a_cut_state_is_read_again_from_the_messages(
        bundled_model_path: Path, store: ConversationStore, chat: int,
        fresh: LlamaEngine) -> None:
    first_launch(bundled_model_path, store, chat)
    db = store.connect_beside(KV_FILE)
    with db:
        db.execute("UPDATE kept SET data = substr(data, 1, length(data) / 2)")
    db.close()
    engine = launch(bundled_model_path, store)
    try:
        request, result = ask(engine, store, chat, "And the shortest?")
        assert engine.last_prompt_evaluated == len(engine.prompt_tokens(request))
    finally:
        engine.unload()
    expected = fresh.generate(request, lambda _text: None, threading.Event())
    assert result.text == expected.text


def test_a_state_claiming_more_tokens_than_it_holds_is_not_used(
        bundled_model_path: Path, store: ConversationStore, chat: int,
        fresh: LlamaEngine) -> None:
    """Its tokens run five further into the next prompt than its cells: used, the model
    would read on from positions it never computed."""
    held = first_launch(bundled_model_path, store, chat)
    session = ChatSession(store)
    session.add_question(chat, "And the shortest?")
    conversation = store.get_conversation(chat)
    assert conversation is not None
    request = session.request(conversation)
    prompt = fresh.prompt_tokens(request)
    claimed = b"".join(t.to_bytes(4, "little", signed=True) for t in prompt[:len(held) + 5])
    db = store.connect_beside(KV_FILE)
    with db:
        db.execute("UPDATE kept SET tokens = ?", (claimed,))
    db.close()
    engine = launch(bundled_model_path, store)
    try:
        result = engine.generate(request, lambda _text: None, threading.Event())
        assert engine.last_prompt_evaluated == len(prompt)
    finally:
        engine.unload()
    expected = fresh.generate(request, lambda _text: None, threading.Event())
    assert result.text == expected.text


def test_the_service_keeps_the_chat_it_holds_when_it_shuts_down(
        bundled_model_path: Path, store: ConversationStore, chat: int, qtbot: QtBot) -> None:
    service = InferenceService(saved_states=StoreStates(store.another_connection))
    try:
        session = ChatSession(store)
        session.add_question(chat, "Name three rivers in Europe.")
        conversation = store.get_conversation(chat)
        assert conversation is not None
        spec = ModelSpec(str(bundled_model_path), "bundled", OPTIONS)
        with qtbot.waitSignal(service.generation_ended, timeout=WAIT_MS):
            service.generate(session.request(conversation), spec)
    finally:
        assert service.shutdown()
    tokens = kept(store, chat, bundled_model_path)
    assert tokens is not None and len(tokens) > 10


def test_a_changed_system_prompt_is_read_again_and_its_old_state_erased(
        bundled_model_path: Path, store: ConversationStore, chat: int) -> None:
    first_launch(bundled_model_path, store, chat)
    store.update_conversation(chat, system_prompt="You answer in one word.")
    engine = launch(bundled_model_path, store)
    try:
        request, _result = ask(engine, store, chat, "And the shortest?")
        assert engine.last_prompt_evaluated == len(engine.prompt_tokens(request))
        engine.keep_context()  # the new content, under the new epoch
        assert kept(store, chat, bundled_model_path) == tuple(engine.context_tokens())
        store.update_conversation(chat, system_prompt="You are a friendly guide.")
        engine.keep_context()  # the epoch it was read under is gone: nothing kept
        assert not (store.path.parent / KV_FILE).exists()
    finally:
        engine.unload()


def test_a_deleted_chats_context_never_passes_to_a_chat_given_its_id(
        bundled_model_path: Path, store: ConversationStore, chat: int) -> None:
    """The model still holds a deleted chat when a new one gets its id and is sent to
    (answered elsewhere, or not yet): the quit keeps nothing."""
    engine = launch(bundled_model_path, store)
    try:
        ask(engine, store, chat, "My secret is the blue door.")
        store.delete_conversation(chat)
        again = store.create_conversation(params=GREEDY).id
        assert again == chat
        ChatSession(store).add_question(again, "Hello")
        engine.keep_context()
    finally:
        engine.unload()
    assert not (store.path.parent / KV_FILE).exists()


def test_a_quit_with_no_model_loaded_still_erases_a_stale_state(
        bundled_model_path: Path, store: ConversationStore, chat: int, qtbot: QtBot) -> None:
    """The chat was deleted after its state was kept; this run never loads a model (its
    chats answer remotely, or it only browsed): the quit erases the state all the same."""
    first_launch(bundled_model_path, store, chat)
    assert (store.path.parent / KV_FILE).is_file()
    store.delete_conversation(chat)
    service = InferenceService(saved_states=StoreStates(store.another_connection))
    assert service.shutdown()
    assert not (store.path.parent / KV_FILE).exists()


def test_a_reply_to_a_history_taken_back_meanwhile_is_not_kept(
        bundled_model_path: Path, store: ConversationStore, chat: int) -> None:
    """The request was made, then (another process) the chat's system prompt changed
    and a message was sent before the model read it: the state it leaves holds the old
    text under an epoch that no longer stands, so the quit keeps nothing."""
    session = ChatSession(store)
    session.add_question(chat, "Name three rivers in Europe.")
    conversation = store.get_conversation(chat)
    assert conversation is not None
    request = session.request(conversation)
    store.update_conversation(chat, system_prompt="You answer in one word.")
    session.add_question(chat, "Anything else?")
    engine = launch(bundled_model_path, store)
    try:
        engine.generate(request, lambda _text: None, threading.Event())
        engine.keep_context()
    finally:
        engine.unload()
    assert not (store.path.parent / KV_FILE).exists()
