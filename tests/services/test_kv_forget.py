"""A deleted chat's KV state does not wait for a clean quit: the service erases the
state kept for the next launch once that chat's mark is gone (services/inference_worker
``forget_chats``), and leaves another chat's alone. The real service and worker thread,
a real store and kept file; no model is needed for it."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Role
from llamadesk.core.kv_state import KVState
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_kv import KV_FILE, KeptHeader, mark_of, read_header, write_kept
from llamadesk.services.inference import InferenceService
from llamadesk.services.kv_persist import StoreStates

STATE = KVState((1, 2, 3), b"kv-bytes" * 64)


def _kept_for_a_new_chat(store: ConversationStore) -> int:
    conversation = store.create_conversation(system_prompt="Be brief.")
    store.add_message(conversation.id, Role.USER, "something private")
    epoch = mark_of(store, conversation.id)
    assert epoch is not None
    write_kept(store, KeptHeader(conversation.id, epoch, "fp"), STATE)
    return conversation.id


def test_deleting_the_kept_chat_erases_its_state_at_once(
        qtbot: QtBot, store: ConversationStore) -> None:
    service = InferenceService(saved_states=StoreStates(store.another_connection))
    try:
        kept = store.path.parent / KV_FILE
        other = _kept_for_a_new_chat(store)
        service.forget_chats(frozenset({10_000}))  # a chat that was never kept
        deleted = _kept_for_a_new_chat(store)  # the kept file now holds this one's
        header = read_header(store)
        assert header is not None and header.conversation_id == deleted
        service.forget_chats(frozenset({other}))  # its mark stands: nothing erased
        store.delete_conversation(other)
        service.forget_chats(frozenset({other}))
        qtbot.wait(300)  # the worker's turn: the kept chat is not the deleted one
        assert kept.exists()
        store.delete_conversation(deleted)
        service.forget_chats(frozenset({deleted}))
        qtbot.waitUntil(lambda: not kept.exists(), timeout=10_000)
    finally:
        service.shutdown()


def test_nothing_kept_and_nothing_loaded_is_no_error(
        qtbot: QtBot, store: ConversationStore) -> None:
    service = InferenceService(saved_states=StoreStates(store.another_connection))
    try:
        service.forget_chats(frozenset({1, 2}))
        service.forget_chats(frozenset())
        qtbot.wait(100)
    finally:
        service.shutdown()
    assert not (store.path.parent / KV_FILE).exists()
