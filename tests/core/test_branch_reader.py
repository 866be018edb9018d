"""The branch a prompt is planned from, reused between sends: it always equals reading
the whole branch, through new turns, edits further up, regenerated replies, another
chat and a forked branch. A real SQLite store."""

from __future__ import annotations

from llamadesk.core.branch_reader import TAIL, BranchReader
from llamadesk.core.conversation import Role
from llamadesk.core.store import ConversationStore


def _chat(store: ConversationStore, turns: int) -> int:
    cid = store.create_conversation().id
    for i in range(turns):
        store.add_message(cid, Role.USER, f"question {i}")
        store.add_message(cid, Role.ASSISTANT, f"answer {i}")
    return cid


def test_new_turns_reuse_the_branch_read_before_and_equal_a_whole_read(
        store: ConversationStore) -> None:
    cid = _chat(store, 20)
    reader = BranchReader(store)
    assert reader.branch(cid) == store.messages(cid)
    assert reader.last_read == "whole"
    for i in range(3):
        store.add_message(cid, Role.USER, f"more {i}")
        assert reader.branch(cid) == store.messages(cid)
        assert reader.last_read == "reused"
        store.add_message(cid, Role.ASSISTANT, f"reply {i}")


def test_a_short_chat_is_read_from_its_tail_alone(store: ConversationStore) -> None:
    cid = _chat(store, TAIL // 2 - 1)
    reader = BranchReader(store)
    assert reader.branch(cid) == store.messages(cid)
    assert reader.last_read == "tail"


def test_edits_and_regenerations_give_the_branch_on_screen(store: ConversationStore) -> None:
    cid = _chat(store, 20)
    reader = BranchReader(store)
    reader.branch(cid)
    branch = store.messages(cid)
    # Regenerate the last reply: a sibling of it becomes the leaf.
    store.add_message(cid, Role.ASSISTANT, "another answer", parent_id=branch[-2].id)
    assert reader.branch(cid) == store.messages(cid)
    # Edit a question far above the tail: a new branch from there.
    store.add_message(cid, Role.USER, "edited", parent_id=branch[9].parent_id)
    assert reader.branch(cid) == store.messages(cid)
    assert [m.content for m in reader.branch(cid)][-1] == "edited"
    # Back to the old branch's leaf.
    store.set_leaf(cid, branch[-1].id)
    assert reader.branch(cid) == branch


def test_another_chat_is_read_whole_and_nothing_leaks_between_chats(
        store: ConversationStore) -> None:
    a, b = _chat(store, 12), _chat(store, 15)
    reader = BranchReader(store)
    assert reader.branch(a) == store.messages(a)
    assert reader.branch(b) == store.messages(b)
    assert reader.last_read == "whole"
    store.add_message(a, Role.USER, "back in a")
    assert reader.branch(a) == store.messages(a)


def test_a_deleted_and_recreated_chat_is_not_taken_from_the_kept_branch(
        store: ConversationStore) -> None:
    cid = _chat(store, 12)
    reader = BranchReader(store)
    reader.branch(cid)
    store.delete_conversation(cid)
    other = _chat(store, 12)
    assert reader.branch(other) == store.messages(other)
