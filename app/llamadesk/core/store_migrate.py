"""Encrypt an existing plaintext database in place, so that a crash at any moment
leaves one complete, usable database.

Steps: fold the WAL into the plaintext file; ``sqlcipher_export`` it into
``<db>.encrypting`` beside it; verify the copy (``integrity_check``, row counts per
table, the full-text index's own check and one search); fsync; hard-link the plaintext
file to ``<db>.plaintext``; atomically rename the copy over ``<db>``; overwrite the
plaintext file with zeros and unlink it. ``recover`` (run before every open) finishes
or undoes whatever a crash interrupted:

- ``<db>.encrypting`` left over: the swap never happened, ``<db>`` is the plaintext
  original; the partial copy is deleted (it is encrypted: nothing to wipe).
- ``<db>.plaintext`` the same file as ``<db>``: the swap never happened; the link goes.
- ``<db>.plaintext`` another file: the swap happened (or it is a stray copy); it is
  wiped and removed.

Overwriting before unlinking keeps the plaintext out of the file system's free blocks
on a spinning disk; SSDs and copy-on-write file systems may keep old blocks anyway, a
limit docs/security.md states.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from llamadesk.core.db import WrongKeyError, connect, is_plaintext, key_pragma, sqlite
from llamadesk.core.store_keys import fsync_dir

log = logging.getLogger(__name__)

ENCRYPTING_SUFFIX = ".encrypting"
PLAINTEXT_SUFFIX = ".plaintext"
_WIPE_CHUNK = 1 << 20


class MigrationError(Exception):
    """The encrypted copy could not be made or did not verify; the plaintext database
    is untouched and still in use."""


def _sibling(db: Path, suffix: str) -> Path:
    return db.with_name(db.name + suffix)


def recover(db: Path) -> None:
    """Finish or undo an encryption that a crash interrupted (see the module doc)."""
    tmp = _sibling(db, ENCRYPTING_SUFFIX)
    for leftover in (tmp, _sibling(tmp, "-journal"), _sibling(tmp, "-wal"),
                     _sibling(tmp, "-shm")):
        if leftover.exists():
            leftover.unlink()
            log.info("removed an unfinished encrypted copy (%s)", leftover.name)
    aside = _sibling(db, PLAINTEXT_SUFFIX)
    if not aside.exists():
        return
    if not db.exists():
        os.replace(aside, db)  # cannot happen by our steps; never lose the only copy
    elif os.path.samefile(db, aside):
        aside.unlink()
    else:
        wipe(aside)
    fsync_dir(db.parent)


def wipe(path: Path) -> None:
    """Overwrite ``path`` with zeros, sync, and unlink it."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        zeros = bytes(min(size, _WIPE_CHUNK))
        left = size
        while left > 0:
            n = fh.write(zeros[:min(left, _WIPE_CHUNK)])
            left -= n
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()
    log.info("overwrote and removed %s", path.name)


def encrypt_in_place(db: Path, key: bytes) -> None:
    """Replace the plaintext database ``db`` by an encrypted copy under ``key``."""
    if not is_plaintext(db):
        raise MigrationError(f"{db} is not a plaintext database.")
    recover(db)
    tmp = _sibling(db, ENCRYPTING_SUFFIX)
    try:
        counts, probe = _export(db, tmp, key)
        _verify(tmp, key, counts, probe)
        _drop_wal(db)
    except (sqlite.Error, WrongKeyError) as exc:
        tmp.unlink(missing_ok=True)
        raise MigrationError(f"Encrypting the chat database failed: {exc}. It is unchanged "
                             "and still in use.") from exc
    except MigrationError:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_file(tmp)
    aside = _sibling(db, PLAINTEXT_SUFFIX)
    aside.unlink(missing_ok=True)
    os.link(db, aside)
    fsync_dir(db.parent)
    os.replace(tmp, db)  # the moment the encrypted database becomes the database
    fsync_dir(db.parent)
    _sibling(db, "-shm").unlink(missing_ok=True)  # the plaintext one's index, stale now
    wipe(aside)
    fsync_dir(db.parent)
    log.info("the chat database is now encrypted")


def _load_vec_if_used(con: sqlite.Connection) -> None:
    """Load sqlite-vec when the database holds its tables (document vectors): counting
    and exporting a ``vec0`` table needs its module, as creating it did."""
    if con.execute("SELECT 1 FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%"
                   "USING vec0%' LIMIT 1").fetchone() is None:
        return
    import sqlite_vec  # present: the database was written with it

    con.enable_load_extension(True)
    try:
        sqlite_vec.load(con)
    finally:
        con.enable_load_extension(False)


def _export(db: Path, tmp: Path, key: bytes) -> tuple[dict[str, int], tuple[str, int]]:
    """Copy ``db`` into the encrypted ``tmp``; the source's row counts and one search."""
    con = connect(db, None)
    try:
        _load_vec_if_used(con)
        if con.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            busy, _log, _done = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                raise MigrationError("Another program has the chat database open; close "
                                     "it and start again.")
        counts = _counts(con)
        probe = _probe(con)
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        con.execute(f"ATTACH DATABASE ? AS encrypted KEY {key_pragma(key)}", (str(tmp),))
        con.execute("SELECT sqlcipher_export('encrypted')")
        # sqlcipher_export copies schema and rows; the schema version travels here.
        con.execute(f"PRAGMA encrypted.user_version = {version}")
        con.execute("DETACH DATABASE encrypted")
    finally:
        con.close()
    return counts, probe


def _drop_wal(db: Path) -> None:
    """Switch the plaintext file to a rollback journal, so that no -wal stays beside
    the file about to be swapped out (SQLite would apply it to the encrypted one)."""
    con = connect(db, None)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    if _sibling(db, "-wal").exists():
        raise MigrationError("The plaintext database still has a write-ahead log.")


def _counts(con: sqlite.Connection) -> dict[str, int]:
    names = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return {n: int(con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}


def _probe(con: sqlite.Connection) -> tuple[str, int]:
    """A word from the latest message, and how many messages the index finds for it."""
    row = con.execute("SELECT content FROM messages ORDER BY id DESC LIMIT 1").fetchone()
    words = re.findall(r"\w{3,}", row[0]) if row else []
    if not words:
        return "", 0
    term = '"' + words[0].replace('"', '""') + '"'
    found = con.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?",
                        (term,)).fetchone()[0]
    return term, int(found)


def _verify(tmp: Path, key: bytes, counts: dict[str, int], probe: tuple[str, int]) -> None:
    con = connect(tmp, key)
    try:
        _load_vec_if_used(con)
        check = con.execute("PRAGMA integrity_check").fetchall()
        if [tuple(r) for r in check] != [("ok",)]:
            raise MigrationError("The encrypted copy failed its integrity check.")
        if _counts(con) != counts:
            raise MigrationError("The encrypted copy does not hold the same rows.")
        con.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        term, found = probe
        if term:
            got = con.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?",
                              (term,)).fetchone()[0]
            if int(got) != found:
                raise MigrationError("Search in the encrypted copy finds other messages.")
    finally:
        con.close()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
