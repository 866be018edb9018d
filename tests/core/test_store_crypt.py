"""The conversation store encrypted at rest: keys in the keychain or under a passphrase,
no keychain, a lost key, migration of a plaintext database, and sqlite-vec on an
encrypted file. Real SQLCipher files; the keychain is the in-memory keyring of
tests/support/hub_fixtures.py, or keyring's own fail backend for "no keychain"."""

from __future__ import annotations

from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from crypt_fixtures import (
    TEST_SCRYPT_N,
    build_plaintext,
    dump,
    files_containing,
    protect_with_passphrase,
)
from hub_fixtures import InMemoryKeyring

from llamadesk.core.conversation import Role
from llamadesk.core.db import WrongKeyError, connect, is_plaintext, sqlite
from llamadesk.core.paths import AppPaths, app_paths
from llamadesk.core.secrets import SERVICE
from llamadesk.core.store import StoreError
from llamadesk.core.store_keys import PASSPHRASE_FILE_ENV, STORE_KEY_USER, KeyStore, Protection
from llamadesk.core.store_open import (
    KeyMissingError,
    NoKeychainError,
    PassphraseRequiredError,
    WrongPassphraseError,
    open_store,
    start_new_history,
    store_key,
    store_status,
)

MARKERS = ["zebra-marker-7QX", "ünïcode-märker-Ω"]


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> AppPaths:
    monkeypatch.delenv(PASSPHRASE_FILE_ENV, raising=False)
    return app_paths().ensure()


@pytest.fixture
def no_keychain() -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())


def test_a_new_store_is_encrypted_with_a_random_key_kept_in_the_keychain(
        paths: AppPaths, memory_keyring: InMemoryKeyring) -> None:
    store = open_store(paths)
    chat = store.create_conversation("secret title " + MARKERS[0])
    store.add_message(chat.id, Role.USER, "hello " + MARKERS[1])
    store.close()
    key_hex = memory_keyring.passwords[(SERVICE, STORE_KEY_USER)]
    assert len(bytes.fromhex(key_hex)) == 32
    assert not is_plaintext(paths.database)
    with pytest.raises(sqlite.DatabaseError):  # without the key it is not a database
        connect(paths.database, None).execute("SELECT * FROM sqlite_master").fetchall()
    with pytest.raises(WrongKeyError):
        connect(paths.database, bytes(32))
    status = store_status(paths)
    assert (status.encrypted, status.protection) == (True, Protection.KEYCHAIN)
    again = open_store(paths)
    assert again.search(MARKERS[0].split("-")[0]) == []  # a title, not a message
    assert [m.content for m in again.search("hello")] == ["hello " + MARKERS[1]]
    again.close()


def test_no_marker_reaches_any_file_after_a_chat_a_search_and_an_edit(
        paths: AppPaths) -> None:
    store = open_store(paths)
    chat = store.create_conversation(MARKERS[0])
    first = store.add_message(chat.id, Role.USER, "tell me " + MARKERS[0])
    store.add_message(chat.id, Role.ASSISTANT, "answer " + MARKERS[1])
    assert store.search(MARKERS[0].split("-")[0])
    store.add_message(chat.id, Role.USER, "edited " + MARKERS[1], as_root=True)
    store.set_state("draft:1", "partial reply " + MARKERS[0])  # a reply being written
    store.rename_conversation(chat.id, "renamed " + MARKERS[1])
    assert first.id
    # Checked while the store is still open: the WAL and shm are on disk now.
    assert files_containing(paths.data_dir, MARKERS) == []
    store.close()
    assert files_containing(paths.data_dir, MARKERS) == []


def test_without_a_keychain_the_store_refuses_until_the_user_chooses(
        paths: AppPaths, no_keychain: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NoKeychainError, match="passphrase"):
        open_store(paths)
    assert not paths.database.exists()  # never a silent plaintext file
    KeyStore(paths.data_dir).choose_unencrypted()
    store = open_store(paths)
    store.create_conversation("plain by choice")
    store.close()
    assert is_plaintext(paths.database)
    assert store_status(paths).protection is Protection.NONE


def test_without_a_keychain_a_passphrase_protects_a_new_store(
        paths: AppPaths, no_keychain: None) -> None:
    store = open_store(paths, passphrase="correct horse")
    store.create_conversation(MARKERS[0])
    store.close()
    assert store_status(paths).protection is Protection.PASSPHRASE
    with pytest.raises(PassphraseRequiredError):
        open_store(paths)
    before = paths.database.read_bytes()
    for _ in range(3):
        with pytest.raises(WrongPassphraseError, match="wrong"):
            open_store(paths, passphrase="wrong horse")
    assert paths.database.read_bytes() == before  # nothing damaged
    again = open_store(paths, passphrase="correct horse")
    assert again.list_conversations()[0].title == MARKERS[0]
    again.close()
    assert files_containing(paths.data_dir, [*MARKERS, "correct horse"]) == []


def test_a_new_passphrase_costs_scrypt_2_17_and_a_stored_cost_is_the_one_used(
        paths: AppPaths, no_keychain: None, tmp_path: Path) -> None:
    """The app wraps a new key at scrypt N=2**17, r=8, p=1; a protection file naming
    another cost (a later version's, or the tests' cheaper one that every e2e test's
    child process unlocks) is unlocked at the cost it names."""
    open_store(paths, passphrase="correct horse").close()
    wrapped = KeyStore(paths.data_dir).wrapped()
    assert (wrapped.n, wrapped.r, wrapped.p) == (2**17, 8, 1)
    other = app_paths(tmp_path / "other").ensure()
    key = protect_with_passphrase(tmp_path / "other", "cheap horse")
    assert KeyStore(other.data_dir).wrapped().n == TEST_SCRYPT_N < 2**17
    assert store_key(other, "cheap horse") == key
    with pytest.raises(WrongPassphraseError):
        store_key(other, "wrong horse")


def test_the_passphrase_file_named_in_the_environment_is_read(
        paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("from a file\n", encoding="utf-8")
    monkeypatch.setenv(PASSPHRASE_FILE_ENV, str(secret))
    open_store(paths).close()
    assert store_status(paths).protection is Protection.PASSPHRASE
    monkeypatch.delenv(PASSPHRASE_FILE_ENV)
    with pytest.raises(PassphraseRequiredError):
        open_store(paths)
    open_store(paths, passphrase="from a file").close()


def test_a_lost_keychain_entry_leaves_the_file_untouched_and_a_new_history_can_start(
        paths: AppPaths, memory_keyring: InMemoryKeyring) -> None:
    store = open_store(paths)
    store.create_conversation("old chat")
    store.close()
    old_key = memory_keyring.passwords.pop((SERVICE, STORE_KEY_USER))  # a reinstalled OS
    before = paths.database.read_bytes()
    with pytest.raises(KeyMissingError, match="cannot be read"):
        open_store(paths)
    assert paths.database.read_bytes() == before
    aside = start_new_history(paths)
    fresh = open_store(paths)
    assert fresh.list_conversations() == []
    fresh.close()
    assert aside.read_bytes() == before  # kept for a later restore
    # The old file still opens with the saved key: the restore works.
    con = connect(aside, bytes.fromhex(old_key))
    assert con.execute("SELECT title FROM conversations").fetchall()[0][0] == "old chat"
    con.close()


def test_a_key_that_does_not_fit_is_a_clear_error(
        paths: AppPaths, memory_keyring: InMemoryKeyring) -> None:
    open_store(paths).close()
    memory_keyring.passwords[(SERVICE, STORE_KEY_USER)] = "00" * 32
    with pytest.raises(StoreError, match="cannot be opened with this key"):
        open_store(paths)


def test_an_encrypted_store_without_any_keychain_says_where_its_key_is(
        paths: AppPaths) -> None:
    open_store(paths).close()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    with pytest.raises(NoKeychainError, match="import-key"):
        open_store(paths)


def test_migration_keeps_every_row_of_a_plaintext_store_with_branches(
        paths: AppPaths) -> None:
    build_plaintext(paths.database, marker=MARKERS[0])
    before = dump(paths.database, None)
    assert len(before["messages"]) == 10_000
    assert any(r[2] is not None and r[0] != r[2] + 1 for r in before["messages"])  # forks
    store = open_store(paths)
    assert store.encrypted
    assert len(store.search(MARKERS[0].split("-")[0])) == 50
    store.close()
    key = store_key(paths)
    assert dump(paths.database, key) == before
    assert not is_plaintext(paths.database)
    assert sorted(p.name for p in paths.data_dir.iterdir()) == [paths.database.name]
    assert files_containing(paths.data_dir, MARKERS) == []


def test_sqlite_vec_loads_and_answers_on_an_encrypted_database(paths: AppPaths) -> None:
    import sqlite_vec

    open_store(paths).close()
    con = connect(paths.database, store_key(paths))
    con.enable_load_extension(True)
    sqlite_vec.load(con)
    con.enable_load_extension(False)
    con.execute("CREATE VIRTUAL TABLE docs USING vec0(embedding float[3])")
    for rowid, vec in ((1, [1.0, 0.0, 0.0]), (2, [0.0, 1.0, 0.0]), (3, [0.9, 0.1, 0.0])):
        con.execute("INSERT INTO docs(rowid, embedding) VALUES (?, ?)",
                    (rowid, sqlite_vec.serialize_float32(vec)))
    rows = con.execute("SELECT rowid FROM docs WHERE embedding MATCH ? ORDER BY distance "
                       "LIMIT 2", (sqlite_vec.serialize_float32([1.0, 0.0, 0.0]),)).fetchall()
    con.close()
    assert [r[0] for r in rows] == [1, 3]
    assert not is_plaintext(paths.database)
