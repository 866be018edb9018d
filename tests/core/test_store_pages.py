"""Reading a long branch a page at a time: the window opens a chat with its last page
and reads older pages as the user scrolls up."""

from __future__ import annotations

from llamadesk.core.conversation import Role
from llamadesk.core.store import ConversationStore


def chat(store: ConversationStore, messages: int) -> tuple[int, list[int]]:
    c = store.create_conversation().id
    ids = [store.add_message(c, Role.USER if i % 2 == 0 else Role.ASSISTANT, f"m{i}").id
           for i in range(messages)]
    return c, ids


def test_the_tail_is_the_end_of_the_branch_oldest_first(store: ConversationStore) -> None:
    c, ids = chat(store, 9)
    assert [m.id for m in store.branch_tail(c, 4)] == ids[-4:]
    assert [m.id for m in store.branch_tail(c, 50)] == ids
    assert store.branch_tail(c, 4)[-1].content == "m8"
    assert store.branch_tail(store.create_conversation().id, 4) == []


def test_pages_above_a_message_walk_up_to_the_first(store: ConversationStore) -> None:
    c, ids = chat(store, 10)
    tail = store.branch_tail(c, 3)
    pages = []
    oldest = tail[0].id
    while page := store.branch_before(oldest, 3):
        pages.insert(0, [m.id for m in page])
        oldest = page[0].id
    assert pages == [ids[0:1], ids[1:4], ids[4:7]]
    assert [i for p in pages for i in p] + [m.id for m in tail] == ids
    assert store.branch_before(ids[0], 3) == []
    assert store.branch_before(10_000, 3) == []  # a message that is gone: nothing


def test_pages_follow_the_branch_on_screen_not_its_siblings(store: ConversationStore) -> None:
    c, ids = chat(store, 4)  # q0 a0 q1 a1
    # A second answer to q1, then a follow-up: the branch on screen is q0 a0 q1 a1' q2.
    other = store.add_message(c, Role.ASSISTANT, "a1 again", parent_id=ids[2])
    follow = store.add_message(c, Role.USER, "q2")
    assert [m.id for m in store.branch_tail(c, 10)] == [*ids[:3], other.id, follow.id]
    assert [m.id for m in store.branch_before(follow.id, 2)] == [ids[2], other.id]
    assert [m.id for m in store.branch_tail(c, 10)] == [m.id for m in store.messages(c)]


def test_version_counts_of_a_page_match_the_whole_chat(store: ConversationStore) -> None:
    c, ids = chat(store, 6)
    store.add_message(c, Role.ASSISTANT, "a1 again", parent_id=ids[2])
    store.add_message(c, Role.ASSISTANT, "a1 third", parent_id=ids[2])
    store.add_message(c, Role.USER, "q0 edited", as_root=True)
    other = store.create_conversation().id
    store.add_message(other, Role.USER, "a root elsewhere")  # not a version of q0
    everything = store.version_counts(c)
    assert len(everything) == 5  # three answers to q1, two first questions
    all_ids = [r[0] for r in store._db.execute(
        "SELECT id FROM messages WHERE conversation_id = ?", (c,))]
    assert store.version_counts_of(all_ids) == everything
    some = [*list(everything)[:2], ids[0]]
    assert store.version_counts_of(some) == {i: everything[i] for i in some}
    assert store.version_counts_of([]) == {}


def test_listing_after_a_conversation_continues_the_order_with_ties(
        store: ConversationStore) -> None:
    ids = [store.create_conversation(f"chat {i}").id for i in range(7)]
    # Three chats updated at the same instant: the id decides among them.
    store._db.execute("UPDATE conversations SET updated_at = 5.0 WHERE id IN (?, ?, ?)",
                      (ids[1], ids[2], ids[3]))
    everything = store.list_conversations()
    pages: list[int] = []
    page = store.list_conversations(limit=2)
    while page:
        pages += [c.id for c in page]
        page = store.list_conversations(limit=2, after=page[-1])
    assert pages == [c.id for c in everything]
    assert pages[-3:] == [ids[3], ids[2], ids[1]]
