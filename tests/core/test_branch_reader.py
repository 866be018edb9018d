"""The branch a prompt is planned from, reused between sends: it always equals reading
the whole branch, through new turns, edits further up, regenerated replies, another
chat and a forked branch. A real SQLite store."""

from __future__ import annotations

import threading

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


def test_a_branch_offered_from_another_thread_is_built_on_by_the_first_read(
        store: ConversationStore) -> None:
    cid = _chat(store, 20)
    reader = BranchReader(store)

    def read_elsewhere() -> None:  # as the writer thread does, with its own connection
        other = store.another_connection()
        try:
            reader.offer(cid, other.messages(cid))
        finally:
            other.close()

    thread = threading.Thread(target=read_elsewhere)
    thread.start()
    thread.join()
    store.add_message(cid, Role.USER, "sent after the chat was opened")
    assert reader.branch(cid) == store.messages(cid)
    assert reader.last_read == "reused"


def test_an_out_of_date_or_wrong_offer_still_gives_the_branch_on_screen(
        store: ConversationStore) -> None:
    a, b = _chat(store, 20), _chat(store, 12)
    reader = BranchReader(store)
    old = store.messages(a)
    for i in range(TAIL):  # more than the tail since the offered read
        store.add_message(a, Role.USER, f"later {i}")
    reader.offer(a, old)
    assert reader.branch(a) == store.messages(a)
    assert reader.last_read == "whole"
    reader.offer(a, store.messages(b))  # another chat's messages under this chat's id
    assert reader.branch(a) == store.messages(a)
    reader.offer(b, store.messages(b))
    store.add_message(a, Role.ASSISTANT, "an answer", parent_id=old[-1].id)  # a fork
    reader.offer(a, old)
    assert reader.branch(a) == store.messages(a)
    assert reader.last_read == "reused"
