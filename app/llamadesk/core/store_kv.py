"""The KV state of the chat the model held when the app quit, kept for the next launch.

While the app runs, the engine keeps each chat's llama.cpp KV state in memory
(services/kv_context.py). At quit, the state of the chat the model held is written to
``KV_FILE`` beside the chat database, with the database's key (encrypted as the chats
are, plaintext only when the user chose an unencrypted store), so the next launch that
continues that chat reads only the new message instead of its whole history again.

Whether a state may be kept is the chat database's to say, through that chat's mark
(``kv_marks``, triggers in core/store_sql.py): a random epoch, made when a message is
sent to a conversation and dropped when it is deleted, its system prompt changed, or
one of its messages deleted or changed in place (edits and regenerations add versions;
the state is then used only as far as its tokens equal the new prompt's). A state is
written only under the epoch its conversation had when the model read it, and read back
only while that epoch stands; a state whose mark is gone is erased at the next quit.
The file holds one state or does not exist; a new one is written aside and renamed into
place after the old one was erased (overwritten with zeros, then unlinked), and it is
erased too when the database is encrypted or set aside (core/store_open.py), as it was
written with the old key (best effort there: the store's own move comes first).
"""

from __future__ import annotations

import contextlib
import os
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamadesk.core.db import WrongKeyError, sqlite
from llamadesk.core.kv_state import KVState
from llamadesk.core.store import ConversationStore

#: The file of the kept state, in the chat database's folder.
KV_FILE = "llamadesk-kv.sqlite3"
_TOKEN = "i"  # 32-bit signed, as llama.cpp's llama_token
_READ_ERRORS = (sqlite.Error, WrongKeyError, OSError)


@dataclass(frozen=True)
class KeptHeader:
    """Whose the kept state is, under which epoch, made by what (``fingerprint``)."""

    conversation_id: int
    epoch: bytes
    fingerprint: str


def mark_of(store: ConversationStore, conversation_id: int) -> bytes | None:
    """The epoch under which ``conversation_id``'s state may be kept, or None (also when
    the database cannot be read now: nothing is kept then)."""
    try:
        row = store.connection.execute(
            "SELECT epoch FROM kv_marks WHERE conversation_id = ?",
            (conversation_id,)).fetchone()
    except sqlite.Error:
        return None
    return bytes(row[0]) if row is not None else None


def _pack(tokens: tuple[int, ...]) -> bytes:
    packed = array(_TOKEN, tokens)
    if sys.byteorder != "little":  # the file reads the same on every machine
        packed.byteswap()
    return packed.tobytes()


def _unpack(blob: bytes) -> tuple[int, ...] | None:
    if not blob or len(blob) % 4:
        return None
    tokens = array(_TOKEN)
    tokens.frombytes(blob)
    if sys.byteorder != "little":
        tokens.byteswap()
    return tuple(tokens)


def _path(store: ConversationStore) -> Path:
    return store.path.parent / KV_FILE


def write_kept(store: ConversationStore, header: KeptHeader, state: KVState) -> None:
    """Make ``state`` the kept one (any earlier one erased first). Raises OSError or
    sqlite.Error when it cannot be written."""
    final = _path(store)
    part = final.with_name(final.name + ".part")
    erase_kept(store)
    db = store.connect_beside(part.name)
    try:
        db.executescript(
            "CREATE TABLE kept (conversation_id INTEGER NOT NULL, epoch BLOB NOT NULL, "
            "fingerprint TEXT NOT NULL, tokens BLOB NOT NULL, data BLOB NOT NULL);")
        db.execute("BEGIN")
        db.execute("INSERT INTO kept VALUES (?, ?, ?, ?, ?)",
                   (header.conversation_id, header.epoch, header.fingerprint,
                    _pack(state.tokens), state.data))
        db.execute("COMMIT")
    finally:
        db.close()
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, final)


def _one_row(store: ConversationStore, sql: str, params: tuple[object, ...] = ()) -> Any:
    """The first row ``sql`` gives in the kept state's file, or None (no file, or one
    that does not open with the key or does not read)."""
    if not _path(store).is_file():
        return None
    try:
        db = store.connect_beside(KV_FILE)
        try:
            return db.execute(sql, params).fetchone()
        finally:
            db.close()
    except _READ_ERRORS:
        return None


def read_header(store: ConversationStore) -> KeptHeader | None:
    """Whose the kept state is (None when there is none, or it does not read)."""
    row = _one_row(store, "SELECT conversation_id, epoch, fingerprint FROM kept")
    if row is None:
        return None
    return KeptHeader(int(row[0]), bytes(row[1]), str(row[2]))


def read_kept(store: ConversationStore, header: KeptHeader) -> KVState | None:
    """The kept state if it is still ``header``'s and reads whole, else None."""
    row = _one_row(store, "SELECT tokens, data FROM kept WHERE conversation_id = ? "
                   "AND epoch = ? AND fingerprint = ?",
                   (header.conversation_id, header.epoch, header.fingerprint))
    if row is None:
        return None
    tokens = _unpack(bytes(row[0] or b""))
    data = bytes(row[1] or b"")
    if tokens is None or not data:
        return None
    return KVState(tokens, data)


def erase_kept(store: ConversationStore) -> None:
    """Remove the kept state: overwritten with zeros, then unlinked."""
    erase_kept_beside(store.path)


def erase_kept_beside(database: Path) -> None:
    """Remove the kept state beside the chat database ``database`` and any file a write
    of it left (overwritten with zeros, then unlinked): when the state is stale, and
    when the database is encrypted or set aside, since it was written with the old key."""
    # Here, not at the top: the store's migration module brings the keychain's modules,
    # which the window's first paint does without (tests/ui/test_startup_imports.py).
    from llamadesk.core.store_migrate import wipe

    final = database.parent / KV_FILE
    part = final.with_name(final.name + ".part")
    for stale in (part, part.with_name(part.name + "-journal"), final,
                  final.with_name(final.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            wipe(stale)
