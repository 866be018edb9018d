"""Where the model's memory begins, stored per branch (schema migration 3)."""

from __future__ import annotations

from pathlib import Path

from llamadesk.core.conversation import Role
from llamadesk.core.db import sqlite
from llamadesk.core.store import (
    LAST_CONVERSATION_KEY,
    MIGRATIONS,
    SCHEMA_VERSION,
    ConversationStore,
)


def chat(store: ConversationStore, turns: int) -> tuple[int, list[int]]:
    c = store.create_conversation().id
    ids = []
    for i in range(turns):
        ids.append(store.add_message(c, Role.USER, f"question {i}").id)
        ids.append(store.add_message(c, Role.ASSISTANT, f"answer {i}").id)
    return c, ids


def test_no_start_until_one_is_set(store: ConversationStore) -> None:
    c, _ids = chat(store, 3)
    assert store.memory_start(c) is None
    assert store.memory_start(store.create_conversation().id) is None


def test_the_latest_mark_on_the_branch_counts(store: ConversationStore) -> None:
    c, ids = chat(store, 5)
    store.set_memory_start(ids[2])
    assert store.memory_start(c) == ids[2]
    store.set_memory_start(ids[6])
    assert store.memory_start(c) == ids[6]
    store.set_memory_start(ids[6])  # setting it again changes nothing
    assert store.memory_start(c) == ids[6]


def test_each_branch_has_its_own_start(store: ConversationStore) -> None:
    c, ids = chat(store, 5)  # q0 a0 q1 a1 q2 a2 q3 a3 q4 a4
    store.set_memory_start(ids[6])  # q3
    # An edit of q1 forks before the mark: that branch has no start of its own yet.
    fork = store.add_message(c, Role.USER, "question 1, edited", parent_id=ids[1])
    assert store.memory_start(c) is None
    store.add_message(c, Role.ASSISTANT, "another answer")
    store.set_memory_start(fork.id)
    assert store.memory_start(c) == fork.id
    # A regenerated last answer forks after the mark: it shares it.
    store.show_branch(ids[8])
    store.add_message(c, Role.ASSISTANT, "a new version", parent_id=ids[8])
    assert store.memory_start(c) == ids[6]
    # Back on the edited branch, its own start.
    store.show_branch(fork.id)
    assert store.memory_start(c) == fork.id


def test_a_start_past_the_leaf_is_not_on_the_branch(store: ConversationStore) -> None:
    """Regenerating moves the leaf back to the question; a start after it is not used."""
    c, ids = chat(store, 3)
    store.set_memory_start(ids[2])
    store.set_memory_start(ids[4])
    store.set_leaf(c, ids[3])
    assert store.memory_start(c) == ids[2]


def test_starts_are_per_conversation_and_survive_reopening(db_path: Path) -> None:
    s = ConversationStore(db_path)
    a, a_ids = chat(s, 3)
    b, b_ids = chat(s, 3)
    s.set_memory_start(a_ids[2])
    s.set_memory_start(b_ids[4])
    s.close()
    again = ConversationStore(db_path)
    try:
        assert again.memory_start(a) == a_ids[2]
        assert again.memory_start(b) == b_ids[4]
    finally:
        again.close()


def test_deleting_a_chat_deletes_its_starts(store: ConversationStore, db_path: Path) -> None:
    c, ids = chat(store, 2)
    store.set_memory_start(ids[2])
    store.delete_conversation(c)
    con = sqlite.connect(db_path)
    try:
        assert con.execute("SELECT COUNT(*) FROM memory_starts").fetchone() == (0,)
    finally:
        con.close()
    store.set_memory_start(ids[2])  # a reply finishing after the delete: ignored
    assert store.memory_start(c) is None


def test_upgrade_from_version_2_keeps_every_chat(db_path: Path) -> None:
    con = sqlite.connect(str(db_path))
    con.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "\nPRAGMA user_version = 2;")
    con.execute("INSERT INTO conversations (id, title, created_at, updated_at, params, "
                "current_leaf_id) VALUES (1, 'Old', 1.0, 2.0, '{}', 2)")
    con.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, "
                "created_at) VALUES (1, 1, NULL, 'user', 'hi', 1.5), "
                "(2, 1, 1, 'assistant', 'hello', 1.6)")
    con.commit()
    con.close()
    s = ConversationStore(db_path)
    try:
        assert s.schema_version == SCHEMA_VERSION
        assert [m.content for m in s.messages(1)] == ["hi", "hello"]
        assert s.memory_start(1) is None
        s.set_memory_start(1)
        assert s.memory_start(1) == 1
    finally:
        s.close()


def test_the_last_conversation_key_is_defined_once() -> None:
    """The window and the command line share it from the store, so they cannot drift."""
    app = Path(__file__).resolve().parents[2] / "app" / "llamadesk"
    holders = [p.relative_to(app).as_posix() for p in sorted(app.rglob("*.py"))
               if f'"{LAST_CONVERSATION_KEY}"' in p.read_text(encoding="utf-8")]
    assert holders == ["core/store.py"]
