"""The deferred sync's log file (core/store_sync.py), with a real SQLite file: the log it
syncs is the one SQLite writes, also when the database is reached through a symbolic
link (SQLite on Unix puts the log beside the link's target)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llamadesk.core.conversation import Role
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_sync import deferred_sync, log_path, sync_log


def _write_deferred(store: ConversationStore) -> None:
    cid = store.create_conversation("t").id
    with deferred_sync(store):
        store.add_message(cid, Role.USER, "a question")


def test_the_log_synced_is_the_one_sqlite_writes(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    try:
        _write_deferred(store)
        assert log_path(store.path).is_file()
        sync_log(store.path)  # the file exists and takes an fsync
    finally:
        store.close()


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_a_database_reached_through_a_link_has_its_log_beside_the_target(
        tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "chats.sqlite3"
    ConversationStore(target).close()
    link = tmp_path / "chats.sqlite3"
    link.symlink_to(target)
    store = ConversationStore(link)
    try:
        _write_deferred(store)
        written = [p for p in (tmp_path, tmp_path / "data") if (p / "chats.sqlite3-wal").exists()]
        assert log_path(link).exists()
        assert [log_path(link).parent] == written
    finally:
        store.close()
