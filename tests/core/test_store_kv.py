"""The KV state kept across launches (core/store_kv.py): the chat database's one mark
says whose state may be kept and under which epoch; the state itself is one file beside
the database, with its key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llamadesk.core.conversation import Role
from llamadesk.core.kv_state import KVState
from llamadesk.core.paths import AppPaths
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_kv import (
    KV_FILE,
    KeptHeader,
    erase_kept,
    mark_of,
    read_header,
    read_kept,
    write_kept,
)

TOKENS = (1, 2, 3, 70_000, -1)
STATE = KVState(TOKENS, b"\x00\x01kv-bytes" * 100)


def sent_to(store: ConversationStore, text: str = "hello") -> int:
    conversation = store.create_conversation(system_prompt="Be brief.")
    store.add_message(conversation.id, Role.USER, text)
    return conversation.id


def test_a_send_marks_its_chat_and_keeps_the_epoch_while_it_goes_on(
        store: ConversationStore) -> None:
    first = sent_to(store)
    epoch = mark_of(store, first)
    assert epoch is not None and len(epoch) == 16
    store.add_message(first, Role.ASSISTANT, "hi")
    store.add_message(first, Role.USER, "and more")
    store.update_conversation(first, system_prompt="Be brief.")  # the same prompt
    assert mark_of(store, first) == epoch
    second = sent_to(store)
    assert mark_of(store, first) == epoch, "a send to another chat takes nothing away"
    assert mark_of(store, second) not in (None, epoch)


def test_taking_text_back_drops_the_mark(store: ConversationStore) -> None:
    cid = sent_to(store, "a secret the user takes back")
    with store.transaction() as db:
        db.execute("UPDATE messages SET content = 'nothing' WHERE conversation_id = ?", (cid,))
    assert mark_of(store, cid) is None
    store.add_message(cid, Role.USER, "again")
    assert mark_of(store, cid) is not None
    with store.transaction() as db:
        db.execute("DELETE FROM messages WHERE content = 'again'")
    assert mark_of(store, cid) is None
    store.add_message(cid, Role.USER, "once more")
    store.update_conversation(cid, system_prompt="Something else.")
    assert mark_of(store, cid) is None


def test_a_deleted_chats_id_given_again_gets_another_epoch(store: ConversationStore) -> None:
    cid = sent_to(store)
    epoch = mark_of(store, cid)
    store.delete_conversation(cid)
    assert mark_of(store, cid) is None
    again = sent_to(store)
    assert again == cid, "SQLite gives the newest row's id again"
    assert mark_of(store, again) not in (None, epoch)


def test_the_kept_state_comes_back_whole_only_under_its_header(
        store: ConversationStore) -> None:
    cid = sent_to(store)
    epoch = mark_of(store, cid)
    assert epoch is not None
    assert read_header(store) is None
    header = KeptHeader(cid, epoch, "fp")
    write_kept(store, header, STATE)
    again = ConversationStore(store.path)  # another connection, as the next launch's
    try:
        assert read_header(again) == header
        assert read_kept(again, header) == STATE
        assert read_kept(again, KeptHeader(cid, epoch, "another model")) is None
        assert read_kept(again, KeptHeader(cid, b"\x00" * 16, "fp")) is None
    finally:
        again.close()
    write_kept(store, KeptHeader(cid, epoch, "fp2"), KVState((5,), b"x"))  # replaced whole
    assert read_header(store) == KeptHeader(cid, epoch, "fp2")
    erase_kept(store)
    assert not (store.path.parent / KV_FILE).exists()
    assert read_header(store) is None


def test_the_kept_state_is_encrypted_with_the_chats(tmp_path: Path) -> None:
    key = os.urandom(32)
    store = ConversationStore(tmp_path / "chats.sqlite3", key)
    try:
        cid = sent_to(store)
        epoch = mark_of(store, cid)
        assert epoch is not None
        write_kept(store, KeptHeader(cid, epoch, "fp"), STATE)
        raw = (tmp_path / KV_FILE).read_bytes()
        assert b"SQLite format 3" not in raw and b"kv-bytes" not in raw
        assert read_kept(store, KeptHeader(cid, epoch, "fp")) == STATE
    finally:
        store.close()
    other = ConversationStore(tmp_path / "other" / "chats.sqlite3", os.urandom(32))
    try:  # the file under another key (a new history) reads as nothing
        (tmp_path / "other" / KV_FILE).write_bytes(raw)
        assert read_header(other) is None
    finally:
        other.close()


def test_a_damaged_file_reads_as_nothing(store: ConversationStore) -> None:
    (store.path.parent / KV_FILE).write_bytes(b"not a database at all" * 100)
    assert read_header(store) is None
    cid = sent_to(store)
    epoch = mark_of(store, cid)
    assert epoch is not None
    write_kept(store, KeptHeader(cid, epoch, "fp"), STATE)
    db = store.connect_beside(KV_FILE)
    try:
        db.execute("UPDATE kept SET tokens = x'010203'")  # not whole 32-bit tokens
        db.commit()
    finally:
        db.close()
    assert read_kept(store, KeptHeader(cid, epoch, "fp")) is None


def test_encrypting_the_store_or_setting_it_aside_erases_the_kept_state(
        tmp_path: Path) -> None:
    from llamadesk.core.paths import app_paths
    from llamadesk.core.store_open import open_with_key, start_new_history

    paths = app_paths(tmp_path / "home").ensure()
    kept, cid, epoch = _plaintext_kept_state(paths)
    assert kept.is_file()
    encrypted = open_with_key(paths, os.urandom(32))  # the plaintext store is encrypted
    try:
        assert not kept.exists(), "no plaintext state left beside an encrypted store"
        write_kept(encrypted, KeptHeader(cid, epoch, "fp"), STATE)
    finally:
        encrypted.close()
    start_new_history(paths)
    assert not kept.exists(), "a state under the key set aside goes"


def _plaintext_kept_state(paths: AppPaths) -> tuple[Path, int, bytes]:
    """A chat sent to in a plaintext store, its state kept beside it."""
    database = paths.database
    plain = ConversationStore(database)
    try:
        cid = sent_to(plain, "a plaintext chat")
        epoch = mark_of(plain, cid)
        assert epoch is not None
        write_kept(plain, KeptHeader(cid, epoch, "fp"), STATE)
    finally:
        plain.close()
    return database.parent / KV_FILE, cid, epoch


def test_a_plaintext_state_beside_a_store_encrypted_earlier_is_erased_at_open(
        tmp_path: Path) -> None:
    """The store was encrypted by an earlier launch whose erase did not happen (an
    encryption that ``recover`` finished, a file that could not be erased then): the
    next open with the key erases the plaintext state."""
    import shutil

    from llamadesk.core.paths import app_paths
    from llamadesk.core.store_open import open_with_key

    paths = app_paths(tmp_path / "home").ensure()
    kept, _cid, _epoch = _plaintext_kept_state(paths)
    saved = tmp_path / "kept-plaintext"
    shutil.copy(kept, saved)
    key = os.urandom(32)
    open_with_key(paths, key).close()  # encrypts, erases
    shutil.copy(saved, kept)  # as if that erase had not happened
    open_with_key(paths, key).close()  # already encrypted: only the state is looked at
    assert not kept.exists()


def test_a_state_that_cannot_be_erased_stops_neither_the_open_nor_the_move_aside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Erasing the kept state is best effort: a file held open by another program (or
    read-only) must not make a sound store refuse to open, nor leave a database moved
    aside without its protection file."""
    from llamadesk.core import store_migrate
    from llamadesk.core.paths import app_paths
    from llamadesk.core.store_open import key_store, open_with_key, start_new_history

    paths = app_paths(tmp_path / "home").ensure()
    kept, cid, _epoch = _plaintext_kept_state(paths)

    wipe = store_migrate.wipe

    def refused(path: Path) -> None:  # the kept state's files only
        if path.name.startswith(KV_FILE):
            raise PermissionError(13, "Permission denied", str(path))
        wipe(path)

    monkeypatch.setattr(store_migrate, "wipe", refused)
    store = open_with_key(paths, os.urandom(32))  # encrypted; the erase refused
    try:
        assert store.get_conversation(cid) is not None
    finally:
        store.close()
    protection = key_store(paths).protection_file
    protection.write_text("{}", encoding="utf-8")  # stands in for the wrapped key's file
    aside = start_new_history(paths)
    assert not paths.database.exists() and aside.exists()
    assert not protection.exists(), "the protection file moved with its database"
    assert aside.with_name(aside.name + ".protection.json").exists()
    assert kept.exists(), "left for a later erase: the move went on all the same"
