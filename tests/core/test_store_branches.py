"""Edits and regenerations keep the old branch; the conversation shows one branch."""

from __future__ import annotations

import pytest

from llamadesk.core.conversation import Role
from llamadesk.core.store import ConversationStore


def contents(store: ConversationStore, conversation_id: int) -> list[str]:
    return [m.content for m in store.messages(conversation_id)]


def test_a_second_reply_to_the_same_question_is_a_new_version(store: ConversationStore) -> None:
    c = store.create_conversation()
    q = store.add_message(c.id, Role.USER, "question")
    first = store.add_message(c.id, Role.ASSISTANT, "first answer")
    store.add_message(c.id, Role.USER, "follow-up")
    second = store.add_message(c.id, Role.ASSISTANT, "second answer", parent_id=q.id)
    assert contents(store, c.id) == ["question", "second answer"]
    assert [m.id for m in store.versions(first.id)] == [first.id, second.id]
    assert store.version_counts(c.id) == {first.id: (1, 2), second.id: (2, 2)}

    # Going back to the first version brings back what followed it.
    store.show_branch(first.id)
    assert contents(store, c.id) == ["question", "first answer", "follow-up"]


def test_editing_the_first_message_starts_a_new_root(store: ConversationStore) -> None:
    c = store.create_conversation()
    original = store.add_message(c.id, Role.USER, "hello")
    store.add_message(c.id, Role.ASSISTANT, "hi")
    edited = store.add_message(c.id, Role.USER, "hello there", as_root=True)
    assert edited.parent_id is None
    assert contents(store, c.id) == ["hello there"]
    assert store.version_counts(c.id) == {original.id: (1, 2), edited.id: (2, 2)}
    store.show_branch(original.id)
    assert contents(store, c.id) == ["hello", "hi"]


def test_versions_are_per_conversation(store: ConversationStore) -> None:
    a = store.create_conversation("a")
    b = store.create_conversation("b")
    store.add_message(a.id, Role.USER, "root in a")
    store.add_message(b.id, Role.USER, "root in b")
    assert store.version_counts(a.id) == {}
    assert store.version_counts(b.id) == {}


def test_show_branch_follows_the_newest_follower(store: ConversationStore) -> None:
    c = store.create_conversation()
    q = store.add_message(c.id, Role.USER, "q")
    store.add_message(c.id, Role.ASSISTANT, "old")
    store.add_message(c.id, Role.ASSISTANT, "new", parent_id=q.id)
    store.set_leaf(c.id, None)
    assert contents(store, c.id) == []
    store.show_branch(q.id)
    assert contents(store, c.id) == ["q", "new"]
    with pytest.raises(KeyError):
        store.show_branch(9999)
