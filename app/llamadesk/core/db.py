"""The one place that opens SQLite connections to the conversation database.

Connections come from SQLCipher through ``sqlcipher3`` (a DB-API drop-in for
``sqlite3`` with its own SQLite build: FTS5 compiled in, and ``enable_load_extension``
present, which some Python builds' ``sqlite3`` lack). With a key the file is encrypted
page by page (AES-256, HMAC per page), WAL included; without one it is plain SQLite.
Every other module uses the names exported here (``sqlite.Error``, ``sqlite.Row``), never
the standard ``sqlite3`` module, so exceptions and rows come from one library.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlcipher3 import dbapi2 as sqlite

__all__ = ["KEY_BYTES", "WrongKeyError", "connect", "is_plaintext", "new_key", "sqlite"]

#: A store key: 256 random bits, used as SQLCipher's raw key (no KDF on every open).
KEY_BYTES = 32
#: SQLite's page cache for an encrypted database, in KiB (see ``connect``).
ENCRYPTED_CACHE_KIB = 32 * 1024
#: The first 16 bytes of every plain SQLite file; an encrypted file starts with its salt.
PLAIN_HEADER = b"SQLite format 3\x00"


class WrongKeyError(Exception):
    """The key does not open this database (or the file is not a database at all)."""


def new_key() -> bytes:
    """A fresh random store key."""
    return secrets.token_bytes(KEY_BYTES)


def is_plaintext(path: Path) -> bool:
    """Whether ``path`` is a plain (unencrypted) SQLite file; False for an encrypted,
    empty or missing one."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(PLAIN_HEADER)) == PLAIN_HEADER
    except OSError:
        return False


def key_pragma(key: bytes) -> str:
    """The ``PRAGMA key``/``rekey`` argument for a raw 256-bit key."""
    if len(key) != KEY_BYTES:
        raise ValueError("a store key is 32 bytes")
    return f"\"x'{key.hex()}'\""


def connect(path: Path | str, key: bytes | None, *,
            check_same_thread: bool = True) -> sqlite.Connection:
    """Open ``path`` (autocommit: callers begin their own transactions).

    With ``key`` the database is SQLCipher-encrypted, and ``WrongKeyError`` says the key
    does not fit; without, it is plain SQLite. Temporary tables and sort files stay in
    memory either way, so no plaintext spills into a temp file."""
    db = sqlite.connect(str(path), isolation_level=None,
                        check_same_thread=check_same_thread)
    try:
        if key is not None:
            # PRAGMA key must come before anything reads the file.
            db.execute(f"PRAGMA key = {key_pragma(key)}")
            # cipher_memory_security stays OFF (SQLCipher's default): ON wipes and locks
            # every SQLite allocation of the whole process, which made a search of
            # 100,000 messages 1.3 ms -> 550 ms (docs/performance.md). SQLCipher still
            # zeroes its own key material and cipher contexts when they are freed.
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite.DatabaseError as exc:
                raise WrongKeyError(str(exc)) from exc
            # A page found in SQLite's own cache is already decrypted; one read from the
            # file costs an AES decryption and an HMAC check. SQLite's default 2 MiB
            # cache made opening a 2,000-message chat 3-4x slower than plaintext; with
            # up to 32 MiB (filled only as pages are read) it is on a par.
            db.execute(f"PRAGMA cache_size = -{ENCRYPTED_CACHE_KIB}")
        db.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        db.close()
        raise
    return db


def rekey(db: sqlite.Connection, key: bytes) -> None:
    """Re-encrypt an open encrypted database under ``key``."""
    db.execute(f"PRAGMA rekey = {key_pragma(key)}")
