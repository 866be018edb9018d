"""Backups: every chat to a folder and back, each file whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chat_fixtures import assert_same_tree, build_branchy_chat, db_snapshot

from llamadesk.core.backup import (
    INDEX_FILE,
    BackupError,
    backup_files,
    export_all,
    import_folder,
)
from llamadesk.core.conversation import Role
from llamadesk.core.store import ConversationStore


@pytest.fixture
def source(tmp_path: Path) -> ConversationStore:
    store = ConversationStore(tmp_path / "source.sqlite3")
    build_branchy_chat(store)
    c = store.create_conversation("Recipes / sauces: *best*")
    store.add_message(c.id, Role.USER, "Pesto?")
    store.add_message(c.id, Role.ASSISTANT, "Basil, pine nuts, garlic.", model_id="m-one")
    store.create_conversation("Recipes / sauces: *best*")  # same title, empty
    yield store
    store.close()


def test_backup_and_restore_every_chat(source: ConversationStore, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    result = export_all(source, folder)
    assert sorted(result.written) == [1, 2, 3] and not result.failed
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["00001 Trip plans Lisbon.json", "00002 Recipes sauces best.json",
                     "00003 Recipes sauces best.json", INDEX_FILE]
    index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
    assert index["format"] == "llamadesk-backup" and len(index["conversations"]) == 3

    target = ConversationStore(tmp_path / "target.sqlite3")
    summary = import_folder(target, folder)
    target.close()
    assert not summary.refused
    assert [i.message_count for i in summary.imported] == [0, 2, 7], "the index's order"
    by_title = {(i.conversation.title, i.message_count): i.conversation.id
                for i in summary.imported}
    assert_same_tree(source.path, 1, target.path, by_title[("Trip plans ✈ «Lisbon»", 7)])
    assert_same_tree(source.path, 2, target.path, by_title[("Recipes / sauces: *best*", 2)])
    assert_same_tree(source.path, 3, target.path, by_title[("Recipes / sauces: *best*", 0)])


def test_a_backup_never_writes_into_a_folder_with_files(source: ConversationStore,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(BackupError, match="not empty"):
        export_all(source, folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(BackupError, match="is a file"):
        export_all(source, tmp_path / "a-file")
    export_all(source, tmp_path / "empty-is-fine")


def test_broken_files_are_refused_one_by_one_and_the_rest_imported(
        source: ConversationStore, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    result = export_all(source, folder)
    # One file damaged, one from a newer version, one deleted.
    result.written[1].write_text(result.written[1].read_text(encoding="utf-8")[:200],
                                 encoding="utf-8")
    newer = json.loads(result.written[2].read_text(encoding="utf-8"))
    newer["format_version"] = 99
    result.written[2].write_text(json.dumps(newer), encoding="utf-8")
    result.written[3].unlink()
    before = db_snapshot(source.path)
    summary = import_folder(source, folder)
    assert summary.imported == []
    reasons = {r.path.name[:5]: r.reason for r in summary.refused}
    assert "not a JSON file" in reasons["00001"]
    assert "newer LlamaDesk" in reasons["00002"]
    assert reasons["00003"] == "the file is missing"
    assert db_snapshot(source.path) == before, "nothing half-imported"

    # Put the missing file back: it alone comes in.
    export_all(source, tmp_path / "again")
    good = next((tmp_path / "again").glob("00003 *"))
    good.replace(result.written[3])
    summary = import_folder(source, folder)
    assert [i.conversation.id for i in summary.imported] == [4]
    assert len(summary.refused) == 2


def test_a_damaged_or_newer_index_refuses_the_folder(source: ConversationStore,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    export_all(source, folder)
    index_path = folder / INDEX_FILE
    index = json.loads(index_path.read_text(encoding="utf-8"))
    before = db_snapshot(source.path)
    for broken, reason in [
            ("{", "damaged"),
            (json.dumps({**index, "format_version": 2}), "newer LlamaDesk"),
            (json.dumps({**index, "conversations": [{"file": "../source.sqlite3"}]}),
             "name of a file in the folder"),
            (json.dumps({**index, "conversations": [{"file": "/etc/passwd"}]}),
             "name of a file in the folder"),
            (json.dumps({"format": "something else"}), "not a LlamaDesk backup index")]:
        index_path.write_text(broken, encoding="utf-8")
        with pytest.raises(BackupError, match=reason):
            import_folder(source, folder)
    assert db_snapshot(source.path) == before


def test_a_folder_without_an_index_imports_its_json_files(source: ConversationStore,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    export_all(source, folder)
    (folder / INDEX_FILE).unlink()
    (folder / "readme.txt").write_text("not a chat")
    assert [p.name[:5] for p in backup_files(folder)] == ["00001", "00002", "00003"]
    summary = import_folder(source, folder)
    assert len(summary.imported) == 3 and not summary.refused
    assert source.count_conversations() == 6


def test_importing_a_file_instead_of_a_folder_is_refused(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    (tmp_path / "chat.json").write_text("{}")
    with pytest.raises(BackupError, match="not a folder"):
        import_folder(store, tmp_path / "chat.json")
    store.close()


def test_a_database_that_refuses_writes_refuses_each_file_with_the_reason(
        source: ConversationStore, tmp_path: Path) -> None:
    big = source.create_conversation("Long")
    source.add_message(big.id, Role.USER, "Tell me everything. " * 10_000)  # 200 kB
    folder = tmp_path / "backup"
    export_all(source, folder)
    target = ConversationStore(tmp_path / "full.sqlite3")
    db = target._db  # the limit holds per connection: the store's own one
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    summary = import_folder(target, folder)  # no StoreError escapes: each file says why
    assert [r.path.name for r in summary.refused] == ["00004 Long.json"]
    assert "full" in summary.refused[0].reason.lower()
    assert len(summary.imported) == 3, "the others still came in"
    assert [c.title for c in target.list_conversations()].count("Long") == 0, \
        "nothing of the refused file was stored"
    target.close()
