"""Plaintext databases of the current schema for the encryption tests, and a dump of
everything a database holds, to compare before and after."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

from llamadesk.core import store_keys
from llamadesk.core.db import connect, is_plaintext, new_key
from llamadesk.core.paths import app_paths
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_open import open_store, store_key

#: The scrypt cost of the protection files tests write before the app starts: 2**10 (about
#: a millisecond) instead of the app's 2**17 (about half a second of CPU per unlock, paid
#: by every child process of a test). The app reads the cost from the file, as it would
#: after a later version raised it; a store the app protects itself still gets the real
#: cost (tests/core/test_store_crypt.py checks it).
TEST_SCRYPT_N = 2**10

WORDS = ("llama", "river", "mountain", "quantum", "teapot", "orbit", "violet", "cipher",
         "harbour", "meadow", "lantern", "pepper")


def build_plaintext(path: Path, messages: int = 10_000, chats: int = 50,
                    marker: str = "", seed: int = 7) -> None:
    """A plaintext store with ``chats`` conversations, ``messages`` messages in all, and
    branches (every 9th message answers an earlier one, forking the chat); ``marker``
    goes into every 100th message."""
    rng = random.Random(seed)
    store = ConversationStore(path)
    ids = [store.create_conversation(f"Chat {i} {rng.choice(WORDS)}").id for i in range(chats)]
    last: dict[int, list[int]] = {c: [] for c in ids}
    with store.transaction() as db:
        for n in range(messages):
            chat = ids[n % chats]
            seen = last[chat]
            parent = (rng.choice(seen) if seen and n % 9 == 0 else (seen[-1] if seen else None))
            text = " ".join(rng.choice(WORDS) for _ in range(12)) + f" n{n}"
            if marker and n % 100 == 0:
                text += f" {marker}"
            cur = db.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (chat, parent, "user" if n % 2 == 0 else "assistant", text, 1_700_000_000 + n))
            seen.append(int(cur.lastrowid or 0))
            db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                       (cur.lastrowid, chat))
        db.execute("INSERT INTO memory_starts (message_id) VALUES (?)", (last[ids[0]][3],))
        db.execute("INSERT INTO app_state (key, value) VALUES ('last_conversation_id', ?)",
                   (str(ids[1]),))
    store.close()


def dump(path: Path, key: bytes | None) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (the full-text index's by a search for each word)."""
    con = connect(path, key)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'messages_fts%' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {t: [tuple(r) for r in con.execute(f'SELECT * FROM "{t}" ORDER BY 1')]
               for t in tables}
        out["fts"] = [(w, tuple(r[0] for r in con.execute(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid",
            (w,)))) for w in WORDS[:3]]
        out["user_version"] = [tuple(con.execute("PRAGMA user_version").fetchone())]
        return out
    finally:
        con.close()


def files_containing(folder: Path, markers: list[str]) -> list[str]:
    """Every file under ``folder`` holding one of ``markers`` (UTF-8 or UTF-16)."""
    hits = []
    needles = [m.encode(enc) for m in markers for enc in ("utf-8", "utf-16-le")]
    for file in folder.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            hits += [f"{file.name}: {n!r}" for n in needles if n in data]
    return hits


def open_any(db_path: Path) -> Any:
    """A raw connection to ``db_path``: plain, or with the key of the app's data folder
    it sits in (``<home>/data/llamadesk.sqlite3``), found as the app finds it."""
    if not db_path.exists() or is_plaintext(db_path):
        return connect(db_path, None)
    return connect(db_path, store_key(app_paths(db_path.parent.parent)))


def protect_with_passphrase(home: Path, passphrase: str) -> bytes:
    """Give ``home``'s store a new key wrapped by ``passphrase`` at ``TEST_SCRYPT_N``:
    the protection file the app's first open would write, at the tests' cost. The
    database itself is created (or a plaintext one encrypted) by the next open, as
    after a crash right after that first write. Returns the key."""
    real_wrap = store_keys.wrap_key

    def cheap_wrap(key: bytes, passphrase: str) -> store_keys.WrappedKey:
        with mock.patch.dict(store_keys._SCRYPT, n=TEST_SCRYPT_N):
            wrapped = real_wrap(key, passphrase)  # derived at the lower cost...
        return replace(wrapped, n=TEST_SCRYPT_N)  # ...and recorded so in the file

    key = new_key()
    keys = store_keys.KeyStore(app_paths(home).data_dir)
    # set_passphrase also clears the keychain's entry: the test's process leaves every
    # keychain alone (a developer's real one included).
    with (mock.patch.object(store_keys, "wrap_key", cheap_wrap),
          mock.patch.object(keys, "forget_keychain_key", lambda: None)):
        keys.set_passphrase(key, passphrase)
    return key


def open_app_store(home: Path | None = None) -> ConversationStore:
    """The store of ``home`` (default: this test's), opened as the app opens it."""
    return open_store(app_paths(home).ensure())
