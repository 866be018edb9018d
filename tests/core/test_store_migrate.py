"""Every state an interrupted encryption can leave behind is finished or undone by
``recover``, leaving one complete database (the SIGKILL test in
tests/e2e/test_encrypt_kill.py reaches the same states by killing a real process)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from crypt_fixtures import build_plaintext, dump

from llamadesk.core.db import is_plaintext, new_key
from llamadesk.core.store_migrate import (
    ENCRYPTING_SUFFIX,
    PLAINTEXT_SUFFIX,
    MigrationError,
    encrypt_in_place,
    recover,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "llamadesk.sqlite3"
    build_plaintext(path, messages=600, chats=6)
    return path


def _copy(template: Path, tmp_path: Path) -> Path:
    db = tmp_path / "llamadesk.sqlite3"
    shutil.copy(template, db)
    return db


def test_a_half_written_encrypted_copy_is_dropped_and_the_plaintext_stays(
        template: Path, tmp_path: Path) -> None:
    db = _copy(template, tmp_path)
    (tmp_path / (db.name + ENCRYPTING_SUFFIX)).write_bytes(os.urandom(5000))
    recover(db)
    assert [p.name for p in tmp_path.iterdir()] == [db.name]
    assert dump(db, None) == dump(template, None)


def test_a_link_made_before_the_swap_is_removed_without_wiping_the_database(
        template: Path, tmp_path: Path) -> None:
    db = _copy(template, tmp_path)
    os.link(db, tmp_path / (db.name + PLAINTEXT_SUFFIX))
    recover(db)
    assert [p.name for p in tmp_path.iterdir()] == [db.name]
    assert dump(db, None) == dump(template, None)


def test_a_plaintext_copy_left_after_the_swap_is_wiped(
        template: Path, tmp_path: Path) -> None:
    db = _copy(template, tmp_path)
    key = new_key()
    encrypt_in_place(db, key)
    shutil.copy(template, tmp_path / (db.name + PLAINTEXT_SUFFIX))  # as if killed mid-wipe
    recover(db)
    assert [p.name for p in tmp_path.iterdir()] == [db.name]
    assert dump(db, key) == dump(template, None)


def test_only_a_plaintext_copy_becomes_the_database_again(
        template: Path, tmp_path: Path) -> None:
    shutil.copy(template, tmp_path / ("llamadesk.sqlite3" + PLAINTEXT_SUFFIX))
    db = tmp_path / "llamadesk.sqlite3"
    recover(db)
    assert is_plaintext(db) and dump(db, None) == dump(template, None)


def test_an_encrypted_file_is_not_encrypted_twice(template: Path, tmp_path: Path) -> None:
    db = _copy(template, tmp_path)
    encrypt_in_place(db, new_key())
    before = db.read_bytes()
    with pytest.raises(MigrationError, match="not a plaintext"):
        encrypt_in_place(db, new_key())
    assert db.read_bytes() == before


def test_a_file_that_is_not_a_chat_database_is_left_alone(tmp_path: Path) -> None:
    from llamadesk.core.db import connect

    db = tmp_path / "other.sqlite3"
    con = connect(db, None)
    con.execute("CREATE TABLE t (x)")
    con.close()
    before = db.read_bytes()
    with pytest.raises(MigrationError, match="unchanged"):
        encrypt_in_place(db, new_key())
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [db.name]
