"""A write the database refuses (a full disk, a lock held by someone else, a read-only
file) becomes a StoreError that says what happened; nothing stored before is lost, the
file stays intact, and writing works again once the cause is gone.

The full disk is SQLite's own SQLITE_FULL, reached through ``PRAGMA max_page_count``
(the database cannot grow past its current size); tests/e2e/test_full_disk.py fills a
real filesystem. ``max_page_count`` and ``busy_timeout`` hold per connection, so they are
set on the store's own one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.db import sqlite
from llamadesk.core.store import ConversationStore, StoreError


def _fill(store: ConversationStore) -> tuple[int, list[str]]:
    c = store.create_conversation("Kept")
    texts = [f"message {i} " + "words " * 40 for i in range(20)]
    for i, text in enumerate(texts):
        store.add_message(c.id, Role.USER if i % 2 == 0 else Role.ASSISTANT, text)
    return c.id, texts


def _cap_growth(store: ConversationStore) -> int:
    db = store._db  # the store's own connection (the limit holds per connection)
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    db.execute(f"PRAGMA max_page_count = {pages}")
    return pages


def _integrity(path: Path) -> str:
    con = sqlite.connect(path)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def test_a_full_database_refuses_a_write_with_a_clear_reason_and_loses_nothing(
        store: ConversationStore) -> None:
    cid, texts = _fill(store)
    pages = _cap_growth(store)
    big = "x" * 200_000  # needs pages the database may not take
    with pytest.raises(StoreError) as info:
        store.add_message(cid, Role.USER, big)
    reason = str(info.value)
    assert "is full" in reason and "Nothing already saved was lost" in reason
    assert str(store.path) in reason
    assert not isinstance(info.value, sqlite.Error)
    assert [m.content for m in store.messages(cid)] == texts
    assert _integrity(store.path) == "ok"

    # Settings saves and new chats fail the same way, and lose nothing either.
    with pytest.raises(StoreError, match="is full"):
        for _ in range(200):
            store.update_conversation(cid, system_prompt="y" * 50_000,
                                      params=SamplingParams(temperature=0.3))
    with pytest.raises(StoreError, match="is full"):
        for i in range(2_000):
            store.create_conversation(f"new {i}", system_prompt="z" * 1_000)

    # Space again: the same write goes through.
    store._db.execute(f"PRAGMA max_page_count = {pages * 100}")
    added = store.add_message(cid, Role.USER, big)
    assert store.messages(cid)[-1] == added
    assert store.search("message 7")[0].content == texts[7]
    assert _integrity(store.path) == "ok"


def test_a_locked_database_says_so(store: ConversationStore) -> None:
    cid, texts = _fill(store)
    store._db.execute("PRAGMA busy_timeout = 100")
    other = sqlite.connect(store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program writing, and taking its time
    try:
        with pytest.raises(StoreError) as info:
            store.add_message(cid, Role.USER, "while locked")
        assert "busy" in str(info.value) and "Nothing already saved was lost" in str(info.value)
        with pytest.raises(StoreError, match="busy"):
            store.set_state("draft:1", "{}")
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.add_message(cid, Role.USER, "after the lock")
    assert [m.content for m in store.messages(cid)] == [*texts, "after the lock"]


def test_a_read_only_database_says_so(store: ConversationStore) -> None:
    cid, texts = _fill(store)
    store._db.execute("PRAGMA query_only = ON")  # as SQLite reports a read-only file
    with pytest.raises(StoreError) as info:
        store.rename_conversation(cid, "Renamed")
    assert "read-only" in str(info.value)
    assert store.get_conversation(cid).title == "Kept"  # type: ignore[union-attr]
    # Reading still works: the chats can be read, searched and exported.
    assert [m.content for m in store.messages(cid)] == texts
    assert store.search("message 3")


def test_a_failed_search_is_a_store_error(store: ConversationStore) -> None:
    _fill(store)
    store._db.execute("DROP TABLE messages_fts")  # as a damaged search index would
    with pytest.raises(StoreError, match="Searching the chats failed"):
        store.search("message")


def test_integrity_errors_stay_what_they_are(store: ConversationStore) -> None:
    """A caller's bug (a missing parent) is not dressed up as a disk problem."""
    cid, _ = _fill(store)
    with pytest.raises(sqlite.IntegrityError):
        store.add_message(cid, Role.USER, "orphan", parent_id=10**9)
