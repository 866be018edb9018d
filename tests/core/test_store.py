"""ConversationStore against real SQLite files: round trips, migrations, branches, search
and crash safety. Raw checks go through a second sqlite3 connection, as another process
(or the next start of the app) would see the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamadesk.core import store as store_module
from llamadesk.core.conversation import FinishReason, MessageStats, Role, SamplingParams
from llamadesk.core.db import sqlite
from llamadesk.core.store import (
    DEFAULT_TITLE,
    MIGRATIONS,
    SCHEMA_VERSION,
    ConversationStore,
    StoreError,
)


class FakeClock:
    """Stands in for time.time() so ordering by updated_at is exact, not a race."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db_path(home: Path) -> Path:
    return home / "data" / "chats.sqlite3"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(store_module, "time", fake)
    return fake


def raw(path: Path) -> sqlite.Connection:
    """A second, independent connection to the same file."""
    con = sqlite.connect(str(path))
    con.row_factory = sqlite.Row
    return con


def table_names(path: Path) -> set[str]:
    con = raw(path)
    try:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        return {r[0] for r in rows}
    finally:
        con.close()


def user_version(path: Path) -> int:
    con = raw(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


# -- opening and migrations ---------------------------------------------------------------


def test_new_file_is_migrated_to_the_current_schema(db_path: Path) -> None:
    assert not db_path.exists()
    s = ConversationStore(db_path)  # the parent folder does not exist yet either
    try:
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert s.schema_version >= 2
    finally:
        s.close()
    assert user_version(db_path) == SCHEMA_VERSION
    names = table_names(db_path)
    assert {"conversations", "messages", "app_state", "messages_fts"} <= names
    assert {"messages_ai", "messages_ad", "messages_au"} <= names


def test_new_file_search_works_straight_away(store: ConversationStore) -> None:
    c = store.create_conversation()
    m = store.add_message(c.id, Role.USER, "the quick brown fox")
    assert [r.id for r in store.search("brown")] == [m.id]


def test_wal_mode_is_on(store: ConversationStore, db_path: Path) -> None:
    con = raw(db_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()


def test_foreign_keys_are_enforced(store: ConversationStore) -> None:
    c = store.create_conversation()
    with pytest.raises(sqlite.IntegrityError):
        store.add_message(c.id, Role.USER, "hi", parent_id=999_999)


def test_reopening_keeps_data(db_path: Path) -> None:
    s = ConversationStore(db_path)
    c = s.create_conversation("Kept", system_prompt="Be brief.")
    m1 = s.add_message(c.id, Role.USER, "first")
    m2 = s.add_message(c.id, Role.ASSISTANT, "second")
    s.set_state("last_conversation", str(c.id))
    conv = s.get_conversation(c.id)
    s.close()

    again = ConversationStore(db_path)
    try:
        assert again.schema_version == SCHEMA_VERSION
        assert again.get_conversation(c.id) == conv
        assert conv is not None and conv.title == "Kept"
        assert again.messages(c.id) == [m1, m2]
        assert again.get_state("last_conversation") == str(c.id)
        assert [m.id for m in again.search("second")] == [m2.id]
    finally:
        again.close()


def test_reopening_does_not_rerun_migrations(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ConversationStore(db_path).close()
    # Were any migration to run again, these would leave a marker table behind.
    markers = [f"CREATE TABLE rerun_marker_{i} (x);" for i in range(len(MIGRATIONS))]
    monkeypatch.setattr(store_module, "MIGRATIONS", markers)
    s = ConversationStore(db_path)
    s.close()
    assert not {n for n in table_names(db_path) if n.startswith("rerun_marker")}
    assert user_version(db_path) == SCHEMA_VERSION


def test_upgrade_from_version_1_indexes_existing_messages(db_path: Path) -> None:
    # Build a version-1 file by hand, as the first release would have left it.
    db_path.parent.mkdir(parents=True)
    con = sqlite.connect(str(db_path))
    con.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    con.execute("INSERT INTO conversations (id, title, created_at, updated_at, params, "
                "current_leaf_id) VALUES (1, 'Old', 1.0, 2.0, '{}', 1)")
    con.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, "
                "created_at) VALUES (1, 1, NULL, 'user', 'an archived walrus', 1.5)")
    con.commit()
    con.close()

    s = ConversationStore(db_path)
    try:
        assert s.schema_version == SCHEMA_VERSION
        assert [m.content for m in s.search("walrus")] == ["an archived walrus"]
        assert [m.content for m in s.messages(1)] == ["an archived walrus"]
    finally:
        s.close()


def test_failed_migration_rolls_back_completely(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ConversationStore(db_path).close()
    broken = "CREATE TABLE half_done (x);\nCREATE TABLE broken (;"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError):
        ConversationStore(db_path)
    assert user_version(db_path) == SCHEMA_VERSION
    assert "half_done" not in table_names(db_path)


def test_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    ConversationStore(db_path).close()
    con = sqlite.connect(str(db_path))
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    con.close()

    with pytest.raises(StoreError) as info:
        ConversationStore(db_path)
    text = str(info.value)
    assert "newer" in text
    assert str(SCHEMA_VERSION + 3) in text
    assert str(db_path) in text
    assert "Update" in text
    # Refusing must not touch the file: the newer app can still read it.
    assert user_version(db_path) == SCHEMA_VERSION + 3


@pytest.mark.parametrize("content", [
    b"this is a text file, not a database\n" * 50,
    b"\x00\x01\x02\x03" * 1024,
    b"SQLite format 3\x00" + b"\xff" * 200,  # the right header, garbage after it
])
def test_non_sqlite_file_raises_store_error(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        ConversationStore(db_path)
    assert not isinstance(info.value, sqlite.Error)
    assert isinstance(info.value.__cause__, sqlite.DatabaseError)
    assert str(db_path) in str(info.value)
    assert db_path.read_bytes() == content  # the user's file is left as it was


def test_in_memory_database_works() -> None:
    s = ConversationStore(":memory:")
    try:
        c = s.create_conversation()
        s.add_message(c.id, Role.USER, "hello memory")
        assert [m.content for m in s.search("memory")] == ["hello memory"]
    finally:
        s.close()


# -- conversations --------------------------------------------------------------------------


def test_conversation_round_trip(store: ConversationStore, clock: FakeClock) -> None:
    params = SamplingParams(temperature=0.2, top_p=0.5, top_k=7, min_p=0.1,
                            repeat_penalty=1.3, max_tokens=77, n_ctx=2048, seed=1234)
    c = store.create_conversation("Trip planning", model_id="org/model-Q4_K_M",
                                  system_prompt="You plan trips.\nBe concise.", params=params)
    assert c.title == "Trip planning"
    assert c.model_id == "org/model-Q4_K_M"
    assert c.system_prompt == "You plan trips.\nBe concise."
    assert c.params == params
    assert c.current_leaf_id is None
    assert c.created_at == c.updated_at == clock.now
    assert store.get_conversation(c.id) == c
    assert store.count_conversations() == 1


def test_conversation_defaults(store: ConversationStore) -> None:
    c = store.create_conversation()
    assert c.title == DEFAULT_TITLE
    assert c.model_id is None
    assert c.system_prompt == ""
    assert c.params == SamplingParams()


def test_get_missing_conversation_is_none(store: ConversationStore) -> None:
    assert store.get_conversation(42) is None
    assert store.messages(42) == []


def test_update_conversation_changes_only_given_fields(store: ConversationStore) -> None:
    c = store.create_conversation("T", model_id="a", system_prompt="old")
    new_params = SamplingParams(temperature=1.5, seed=9)
    store.update_conversation(c.id, params=new_params)
    after = store.get_conversation(c.id)
    assert after is not None
    assert (after.params, after.system_prompt, after.model_id) == (new_params, "old", "a")

    store.update_conversation(c.id, system_prompt="", model_id="b")
    after = store.get_conversation(c.id)
    assert after is not None
    assert (after.params, after.system_prompt, after.model_id) == (new_params, "", "b")

    store.update_conversation(c.id)  # nothing to change is not an error
    assert store.get_conversation(c.id) == after


@pytest.mark.parametrize(("given", "expected"), [
    ("Holiday", "Holiday"),
    ("  Spaced \n  out\ttitle  ", "Spaced out title"),
    ("", DEFAULT_TITLE),
    ("   \n\t ", DEFAULT_TITLE),
])
def test_rename(store: ConversationStore, given: str, expected: str) -> None:
    c = store.create_conversation("Before")
    store.rename_conversation(c.id, given)
    after = store.get_conversation(c.id)
    assert after is not None
    assert after.title == expected


def test_list_is_ordered_by_last_update(store: ConversationStore, clock: FakeClock) -> None:
    a = store.create_conversation("a")
    b = store.create_conversation("b")
    c = store.create_conversation("c")
    assert [x.title for x in store.list_conversations()] == ["c", "b", "a"]

    store.add_message(a.id, Role.USER, "bump a")  # a new message moves a chat to the top
    assert [x.title for x in store.list_conversations()] == ["a", "c", "b"]
    assert [x.title for x in store.list_conversations(limit=2)] == ["a", "c"]
    assert [x.title for x in store.list_conversations(limit=2, offset=2)] == ["b"]
    assert store.count_conversations() == 3
    assert b.id != c.id


def test_list_breaks_ties_by_newest_id(
        store: ConversationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = FakeClock()
    frozen.time = lambda: 1_000.0  # type: ignore[method-assign]
    monkeypatch.setattr(store_module, "time", frozen)
    ids = [store.create_conversation(str(i)).id for i in range(4)]
    assert [x.id for x in store.list_conversations()] == sorted(ids, reverse=True)


def test_damaged_params_blob_still_loads(store: ConversationStore, db_path: Path) -> None:
    blobs = ["{not json", "[1, 2]", "42", '"text"', "null", ""]
    ids = [store.create_conversation(f"chat {i}").id for i in range(len(blobs))]
    con = raw(db_path)
    for cid, blob in zip(ids, blobs, strict=True):
        con.execute("UPDATE conversations SET params = ? WHERE id = ?", (blob, cid))
    con.commit()
    con.close()

    for i, cid in enumerate(ids):
        conv = store.get_conversation(cid)
        assert conv is not None, blobs[i]
        assert conv.title == f"chat {i}"
        assert conv.params == SamplingParams()
    assert len(store.list_conversations()) == len(blobs)


def test_params_with_unknown_and_missing_keys_load(
        store: ConversationStore, db_path: Path) -> None:
    cid = store.create_conversation().id
    con = raw(db_path)
    con.execute("UPDATE conversations SET params = ? WHERE id = ?",
                ('{"temperature": 0.3, "mirostat": 2}', cid))
    con.commit()
    con.close()
    conv = store.get_conversation(cid)
    assert conv is not None
    assert conv.params == SamplingParams(temperature=0.3)


# -- messages and branches --------------------------------------------------------------------


def test_message_round_trip_with_all_fields(db_path: Path, clock: FakeClock) -> None:
    s = ConversationStore(db_path)
    c = s.create_conversation()
    user = s.add_message(c.id, Role.USER, "Héllo 👋\nsecond line", created_at=1234.5)
    stats = MessageStats(prompt_tokens=31, completion_tokens=12, ttft_ms=85.25,
                         tokens_per_s=41.5, prompt_tokens_per_s=300.75,
                         finish_reason=FinishReason.LENGTH)
    reply = s.add_message(c.id, Role.ASSISTANT, "Hi!", model_id="org/repo:file.gguf",
                          stats=stats)

    assert (user.conversation_id, user.parent_id, user.role) == (c.id, None, Role.USER)
    assert user.content == "Héllo 👋\nsecond line"
    assert user.created_at == 1234.5
    assert user.model_id is None
    assert user.stats == MessageStats()

    assert reply.parent_id == user.id
    assert reply.role is Role.ASSISTANT
    assert reply.model_id == "org/repo:file.gguf"
    assert reply.stats == stats
    assert reply.stats.finish_reason is FinishReason.LENGTH
    assert reply.created_at == clock.now
    s.close()

    again = ConversationStore(db_path)
    try:
        assert again.get_message(user.id) == user
        assert again.get_message(reply.id) == reply
        assert again.messages(c.id) == [user, reply]
        conv = again.get_conversation(c.id)
        assert conv is not None
        assert conv.current_leaf_id == reply.id
        assert conv.updated_at == clock.now
    finally:
        again.close()


@pytest.mark.parametrize("reason", list(FinishReason))
def test_every_finish_reason_round_trips(store: ConversationStore, reason: FinishReason) -> None:
    c = store.create_conversation()
    m = store.add_message(c.id, Role.ASSISTANT, "x",
                          stats=MessageStats(finish_reason=reason))
    fetched = store.get_message(m.id)
    assert fetched is not None
    assert fetched.stats.finish_reason is reason


def test_system_role_round_trips(store: ConversationStore) -> None:
    c = store.create_conversation()
    m = store.add_message(c.id, Role.SYSTEM, "rules")
    assert store.messages(c.id) == [m]
    assert m.role is Role.SYSTEM


def test_get_missing_message_is_none(store: ConversationStore) -> None:
    assert store.get_message(1) is None


def test_messages_follow_the_current_leaf(store: ConversationStore) -> None:
    c = store.create_conversation()
    u1 = store.add_message(c.id, Role.USER, "u1")
    a1 = store.add_message(c.id, Role.ASSISTANT, "a1")
    u2 = store.add_message(c.id, Role.USER, "u2")
    a2 = store.add_message(c.id, Role.ASSISTANT, "a2")
    assert [m.parent_id for m in (u1, a1, u2, a2)] == [None, u1.id, a1.id, u2.id]
    assert [m.content for m in store.messages(c.id)] == ["u1", "a1", "u2", "a2"]


def test_explicit_parent_starts_a_branch_that_becomes_current(
        store: ConversationStore) -> None:
    c = store.create_conversation()
    u1 = store.add_message(c.id, Role.USER, "u1")
    a1 = store.add_message(c.id, Role.ASSISTANT, "a1")
    u2 = store.add_message(c.id, Role.USER, "u2")
    a2 = store.add_message(c.id, Role.ASSISTANT, "a2")

    # Edit u2: the new version answers a1, like the old one did.
    u2_edit = store.add_message(c.id, Role.USER, "u2 edited", parent_id=a1.id)
    a2_new = store.add_message(c.id, Role.ASSISTANT, "a2 new")

    assert u2_edit.parent_id == a1.id
    assert a2_new.parent_id == u2_edit.id
    assert [m.content for m in store.messages(c.id)] == ["u1", "a1", "u2 edited", "a2 new"]
    conv = store.get_conversation(c.id)
    assert conv is not None
    assert conv.current_leaf_id == a2_new.id
    # The old branch is still stored, untouched.
    assert store.get_message(u2.id) == u2
    assert store.get_message(a2.id) == a2
    assert a2.id in {m.id for m in store.search("a2")}
    assert u1.parent_id is None


def test_branch_from_the_root(store: ConversationStore) -> None:
    """Regenerating the first reply: a sibling of the old reply under the same question."""
    c = store.create_conversation()
    u1 = store.add_message(c.id, Role.USER, "question")
    store.add_message(c.id, Role.ASSISTANT, "first answer")
    store.add_message(c.id, Role.USER, "follow-up")
    retry = store.add_message(c.id, Role.ASSISTANT, "second answer", parent_id=u1.id)
    assert store.messages(c.id) == [u1, retry]


def test_branches_in_two_conversations_do_not_mix(store: ConversationStore) -> None:
    c1 = store.create_conversation()
    c2 = store.create_conversation()
    store.add_message(c1.id, Role.USER, "one")
    store.add_message(c2.id, Role.USER, "two")
    store.add_message(c1.id, Role.ASSISTANT, "one reply")
    assert [m.content for m in store.messages(c1.id)] == ["one", "one reply"]
    assert [m.content for m in store.messages(c2.id)] == ["two"]


def test_delete_cascades(store: ConversationStore, db_path: Path) -> None:
    keep = store.create_conversation("keep")
    kept = store.add_message(keep.id, Role.USER, "survivor penguin")
    gone = store.create_conversation("gone")
    u = store.add_message(gone.id, Role.USER, "doomed penguin")
    a = store.add_message(gone.id, Role.ASSISTANT, "doomed reply")
    store.add_message(gone.id, Role.USER, "branch", parent_id=u.id)

    store.delete_conversation(gone.id)

    assert store.get_conversation(gone.id) is None
    assert store.get_message(u.id) is None
    assert store.get_message(a.id) is None
    assert store.messages(gone.id) == []
    assert [m.id for m in store.search("penguin")] == [kept.id]
    assert store.search("doomed") == []
    assert [x.title for x in store.list_conversations()] == ["keep"]
    con = raw(db_path)
    try:
        assert con.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
    finally:
        con.close()


def test_delete_missing_conversation_is_harmless(store: ConversationStore) -> None:
    c = store.create_conversation()
    store.delete_conversation(c.id + 100)
    assert store.count_conversations() == 1


# -- search -------------------------------------------------------------------------------------


def test_search_matches_whole_words_and_the_last_as_a_prefix(
        store: ConversationStore) -> None:
    c = store.create_conversation()
    fox = store.add_message(c.id, Role.USER, "The quick brown fox jumps")
    dog = store.add_message(c.id, Role.ASSISTANT, "A lazy brown dog sleeps")
    assert {m.id for m in store.search("brown")} == {fox.id, dog.id}
    assert [m.id for m in store.search("qui")] == [fox.id]
    assert [m.id for m in store.search("brown sle")] == [dog.id]  # every word must match
    assert store.search("bro sleeps") == []  # words before the last are whole words
    assert [m.id for m in store.search("lazy brown dog sleeps")] == [dog.id]
    assert [m.id for m in store.search("BROWN FOX")] == [fox.id]  # case-insensitive
    assert store.search("brown cat") == []
    assert store.search("") == []
    assert store.search("   ") == []


@pytest.mark.parametrize("query", [
    '"', '""', '"hello', 'say "hello"', "it's", "*", "-", "AND", "OR NOT", "NEAR(",
    "col:umn", "(", "^", "a\"b'c",
])
def test_search_syntax_in_the_query_is_not_an_error(
        store: ConversationStore, query: str) -> None:
    c = store.create_conversation()
    store.add_message(c.id, Role.USER, 'He said "hello" and it\'s fine')
    assert isinstance(store.search(query), list)


def test_search_with_quotes_finds_the_word(store: ConversationStore) -> None:
    c = store.create_conversation()
    m = store.add_message(c.id, Role.USER, 'He said "hello" to everyone')
    assert [r.id for r in store.search('"hello"')] == [m.id]
    assert [r.id for r in store.search('said "hel')] == [m.id]


def test_search_follows_updates_and_deletes(store: ConversationStore, db_path: Path) -> None:
    c = store.create_conversation()
    m = store.add_message(c.id, Role.USER, "original aardvark")
    # The store has no edit API yet; the triggers must keep the index right regardless.
    con = raw(db_path)
    con.execute("UPDATE messages SET content = 'renamed zebra' WHERE id = ?", (m.id,))
    con.commit()
    assert store.search("aardvark") == []
    assert [r.id for r in store.search("zebra")] == [m.id]
    assert [r.content for r in store.search("zebra")] == ["renamed zebra"]

    con.execute("DELETE FROM messages WHERE id = ?", (m.id,))
    con.commit()
    con.close()
    assert store.search("zebra") == []


def test_search_limit(store: ConversationStore) -> None:
    c = store.create_conversation()
    for i in range(5):
        store.add_message(c.id, Role.USER, f"repeat {i}")
    assert len(store.search("repeat")) == 5
    assert len(store.search("repeat", limit=2)) == 2


# -- app state ----------------------------------------------------------------------------------


def test_app_state(store: ConversationStore) -> None:
    assert store.get_state("last") is None
    store.set_state("last", "3")
    store.set_state("other", "x")
    assert store.get_state("last") == "3"
    store.set_state("last", "7")
    assert store.get_state("last") == "7"
    assert store.get_state("other") == "x"


# -- crash safety -------------------------------------------------------------------------------


def test_message_for_a_missing_conversation_stores_nothing(
        store: ConversationStore, db_path: Path) -> None:
    c = store.create_conversation()
    store.add_message(c.id, Role.USER, "before")
    with pytest.raises(KeyError):
        store.add_message(c.id + 100, Role.USER, "orphan")

    con = raw(db_path)
    try:
        assert [r[0] for r in con.execute("SELECT content FROM messages")] == ["before"]
    finally:
        con.close()
    assert store.search("orphan") == []
    # The failed transaction was rolled back, so the store still takes writes.
    after = store.add_message(c.id, Role.ASSISTANT, "after")
    assert [m.content for m in store.messages(c.id)] == ["before", "after"]
    assert after.content == "after"


@pytest.mark.parametrize("bad", [
    {"role": "robot"},  # fails the CHECK constraint
    {"parent_id": 10_000},  # fails the foreign key
])
def test_failed_insert_leaves_the_conversation_as_it_was(
        store: ConversationStore, clock: FakeClock, bad: dict[str, object]) -> None:
    c = store.create_conversation()
    first = store.add_message(c.id, Role.USER, "kept")
    before = store.get_conversation(c.id)

    role = bad.get("role", Role.USER)
    with pytest.raises(sqlite.IntegrityError):
        store.add_message(c.id, role, "broken",  # type: ignore[arg-type]
                          parent_id=bad.get("parent_id"))  # type: ignore[arg-type]

    assert store.get_conversation(c.id) == before  # leaf and updated_at unchanged
    assert store.messages(c.id) == [first]
    assert store.search("broken") == []
    store.set_state("still", "writable")
    assert store.get_state("still") == "writable"


def test_committed_writes_survive_an_unclosed_store(db_path: Path) -> None:
    """Each write is its own committed transaction: another connection sees it at once,
    without waiting for close()."""
    s = ConversationStore(db_path)
    c = s.create_conversation("live")
    s.add_message(c.id, Role.USER, "visible")
    con = raw(db_path)
    try:
        assert [r[0] for r in con.execute("SELECT content FROM messages")] == ["visible"]
        assert [r[0] for r in con.execute("SELECT title FROM conversations")] == ["live"]
    finally:
        con.close()
        s.close()


def test_search_lists_newest_first_and_stops_at_the_limit(store: ConversationStore) -> None:
    a = store.create_conversation("a")
    b = store.create_conversation("b")
    ids = []
    for i in range(6):
        conversation = a if i % 2 == 0 else b
        ids.append(store.add_message(conversation.id, Role.USER, f"llama number {i}").id)
    store.add_message(a.id, Role.USER, "alpaca only")
    found = store.search("llama", limit=4)
    assert [m.id for m in found] == list(reversed(ids))[:4]
    assert {m.conversation_id for m in store.search("llama")} == {a.id, b.id}
