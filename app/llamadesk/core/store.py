"""The SQLite store of conversations and messages.

WAL mode, schema version in ``PRAGMA user_version``, forward migrations applied in
order on open. Every write is one transaction, so a crash loses at most the write in
flight, never earlier history. One ``ConversationStore`` belongs to one thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llamadesk.core.conversation import (
    Conversation,
    Message,
    MessageStats,
    Role,
    SamplingParams,
)
from llamadesk.core.db import WrongKeyError, connect, sqlite
from llamadesk.core.store_errors import write_failure
from llamadesk.core.store_rows import conversation_from_row as _conversation
from llamadesk.core.store_rows import message_from_row as _message
from llamadesk.core.store_sql import MIGRATIONS as MIGRATIONS
from llamadesk.core.store_sql import SCHEMA_VERSION as SCHEMA_VERSION

DEFAULT_TITLE = "New chat"
#: app_state key of the conversation the window showed last (the CLI continues it).
LAST_CONVERSATION_KEY = "last_conversation_id"


class StoreError(Exception):
    """The database could not be opened, read or written, or is from a newer version of
    the app; ``str()`` says why in words a user can act on."""


class ConversationStore:
    """Conversations and messages in one SQLite file, encrypted when opened with a key
    (``core/store_open.open_store`` decides which key, as the app does)."""

    def __init__(self, path: Path | str, key: bytes | None = None) -> None:
        self.path = Path(path)
        self._key = key
        #: Whether the file is encrypted (opened with a key; see core/db.py).
        self.encrypted = key is not None
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = connect(path, key)
        except WrongKeyError as exc:
            raise StoreError(f"The chat database at {self.path} cannot be opened with this "
                             "key: it belongs to another key or is damaged.") from exc
        except sqlite.Error as exc:
            raise StoreError(f"Cannot open the chat database at {self.path}: {exc}") from exc
        try:
            self._db.row_factory = sqlite.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: every commit syncs the WAL to disk, so a stored message survives an OS
            # crash or a power cut, not only a crash of the app (NORMAL can lose the last
            # commits then). One fsync per message is cheap next to generating a reply.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite.DatabaseError, StoreError) as exc:
            self._db.close()  # a refused file must not stay locked (Windows)
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"Cannot open the chat database at {self.path}: {exc}") from exc

    # -- plumbing -------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (a checkpoint folds the WAL back into the file)."""
        self._db.close()

    def another_connection(self) -> ConversationStore:
        """The same file opened again with the same key, for another thread (a
        connection belongs to the thread that made it)."""
        return ConversationStore(self.path, self._key)

    def connect_beside(self, name: str) -> sqlite.Connection:
        """A database file ``name`` in the store's folder, opened with the store's key
        (encrypted as the chats are, or not at all when they are not)."""
        return connect(self.path.parent / name, self._key)

    @property
    def schema_version(self) -> int:
        """The database's ``PRAGMA user_version``."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def connection(self) -> sqlite.Connection:
        """The connection, for reads by other core modules (documents); writes go
        through ``transaction()``."""
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite.Connection]:
        """The connection inside one write transaction, for bulk work in other core
        modules (an import lands whole or not at all)."""
        with self._transaction() as db:
            yield db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except (sqlite.IntegrityError, sqlite.ProgrammingError):
            raise  # a bug in the caller, not a problem of the disk
        except sqlite.DatabaseError as exc:  # a full disk, a lock, a read-only file: say so
            raise StoreError(write_failure(self.path, exc)) from exc

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The chat database at {self.path} was written by a newer LlamaDesk "
                f"(schema {version}, this version knows {SCHEMA_VERSION}). Update the app."
            )
        for target in range(version, SCHEMA_VERSION):
            # executescript() commits first, so the transaction lives inside the script:
            # a migration and its version bump land together or not at all.
            try:
                self._db.executescript(
                    f"BEGIN IMMEDIATE;\n{MIGRATIONS[target]}\n"
                    f"PRAGMA user_version = {target + 1};\nCOMMIT;")
            except sqlite.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    # -- conversations ----------------------------------------------------------------
    def create_conversation(
        self,
        title: str = DEFAULT_TITLE,
        *,
        model_id: str | None = None,
        system_prompt: str = "",
        params: SamplingParams | None = None,
        origin: str | None = None,
    ) -> Conversation:
        """Create and return an empty conversation (``origin``: see Conversation)."""
        now = time.time()
        params = params or SamplingParams()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model_id, "
                "system_prompt, params, origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, now, now, model_id, system_prompt, json.dumps(params.to_dict()),
                 origin),
            )
        conversation = self.get_conversation(int(cur.lastrowid or 0))
        assert conversation is not None
        return conversation

    def get_conversation(self, conversation_id: int) -> Conversation | None:
        """The conversation with this id, or None."""
        row = self._db.execute(
            "SELECT * FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return _conversation(row) if row else None

    def list_conversations(self, limit: int = -1, offset: int = 0,
                           after: Conversation | None = None) -> list[Conversation]:
        """Conversations, most recently updated first; with ``after``, those that come
        after it in that order (the next page of a list, read from the index where the
        last page ended instead of skipping ``offset`` rows again)."""
        if after is not None:
            rows = self._db.execute(
                "SELECT * FROM conversations WHERE (updated_at, id) < (?, ?) "
                "ORDER BY updated_at DESC, id DESC LIMIT ?",
                (after.updated_at, after.id, limit),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM conversations ORDER BY updated_at DESC, id DESC LIMIT ? "
                "OFFSET ?", (limit, offset),
            ).fetchall()
        return [_conversation(r) for r in rows]

    def count_conversations(self) -> int:
        """How many conversations there are."""
        return int(self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        """Give a conversation a new title (blank titles become the default)."""
        title = " ".join(title.split()) or DEFAULT_TITLE
        with self._transaction() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                       (title, conversation_id))

    def update_conversation(
        self,
        conversation_id: int,
        *,
        system_prompt: str | None = None,
        params: SamplingParams | None = None,
        model_id: str | None = None,
    ) -> None:
        """Change a conversation's settings; None leaves a field as it is."""
        sets: list[str] = []
        values: list[Any] = []
        if system_prompt is not None:
            sets.append("system_prompt = ?")
            values.append(system_prompt)
        if params is not None:
            sets.append("params = ?")
            values.append(json.dumps(params.to_dict()))
        if model_id is not None:
            sets.append("model_id = ?")
            values.append(model_id)
        if not sets:
            return
        with self._transaction() as db:
            db.execute(f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?",
                       (*values, conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a conversation and all of its messages."""
        with self._transaction() as db:
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # -- messages -----------------------------------------------------------------------
    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        *,
        parent_id: int | None = None,
        model_id: str | None = None,
        stats: MessageStats | None = None,
        created_at: float | None = None,
        as_root: bool = False,
        forget_state: str | None = None,
    ) -> Message:
        """Append a message in one transaction. By default it follows the current leaf
        of the conversation; ``parent_id`` puts it after another message (a new branch
        when that message already has a follower), ``as_root`` makes it a first message
        (an edit of the opening message). Either way it becomes the new leaf.
        ``forget_state`` is an app_state key deleted in the same transaction (a reply's
        checkpoint, which the reply replaces: a crash leaves one or the other)."""
        now = time.time()
        stats = stats or MessageStats()
        with self._transaction() as db:
            row = db.execute(
                "SELECT current_leaf_id FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no conversation {conversation_id}")
            if as_root:
                parent_id = None
            elif parent_id is None:
                parent_id = row["current_leaf_id"]
            cur = db.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, created_at, "
                "model_id, prompt_tokens, completion_tokens, ttft_ms, tokens_per_s, "
                "prompt_tokens_per_s, finish_reason, finish_detail) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (conversation_id, parent_id, str(role), content,
                 now if created_at is None else created_at, model_id,
                 stats.prompt_tokens, stats.completion_tokens, stats.ttft_ms,
                 stats.tokens_per_s, stats.prompt_tokens_per_s,
                 str(stats.finish_reason) if stats.finish_reason else None,
                 stats.finish_detail),
            )
            message_id = int(cur.lastrowid or 0)
            db.execute(
                "UPDATE conversations SET current_leaf_id = ?, updated_at = ? WHERE id = ?",
                (message_id, now, conversation_id),
            )
            if forget_state is not None:
                db.execute("DELETE FROM app_state WHERE key = ?", (forget_state,))
        message = self.get_message(message_id)
        assert message is not None
        return message

    def get_message(self, message_id: int) -> Message | None:
        """The message with this id, or None."""
        row = self._db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row else None

    def messages(self, conversation_id: int) -> list[Message]:
        """The branch on screen: from the first message to the conversation's current
        leaf, oldest first."""
        rows = self._db.execute(
            _BRANCH_SELECT,
            (conversation_id,),
        ).fetchall()
        return [_message(r) for r in rows]

    def branch_tail(self, conversation_id: int, limit: int) -> list[Message]:
        """The last ``limit`` messages of the branch on screen, oldest first: what the
        window shows when a chat opens, read without walking the whole branch."""
        rows = self._db.execute(
            "WITH RECURSIVE up(id, depth) AS ("
            " SELECT current_leaf_id, 1 FROM conversations"
            "  WHERE id = ? AND current_leaf_id IS NOT NULL"
            f" {_UP_STEP}) {_PAGE_SELECT}",
            (conversation_id, limit),
        ).fetchall()
        return [_message(r) for r in rows]

    def branch_before(self, message_id: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages just above ``message_id`` on its branch (its parent,
        the parent's parent, …), oldest first: the page above what is shown."""
        rows = self._db.execute(
            "WITH RECURSIVE up(id, depth) AS ("
            " SELECT parent_id, 1 FROM messages WHERE id = ? AND parent_id IS NOT NULL"
            f" {_UP_STEP}) {_PAGE_SELECT}",
            (message_id, limit),
        ).fetchall()
        return [_message(r) for r in rows]

    # -- the model's memory -------------------------------------------------------------
    def memory_start(self, conversation_id: int) -> int | None:
        """The first message the model still sees on the branch on screen (None: the
        whole branch). It is the latest message on the branch marked by
        ``set_memory_start``, so each branch keeps its own, and a branch that forks
        after a mark shares it."""
        marked = self._db.execute(
            "SELECT 1 FROM memory_starts s JOIN messages m ON m.id = s.message_id "
            "WHERE m.conversation_id = ? LIMIT 1", (conversation_id,)).fetchone()
        if marked is None:  # most chats never outgrew the context: no walk at all
            return None
        # A message's id is always above its parent's (it is inserted after it), so the
        # latest mark on the branch is the first one met walking up from the leaf.
        row = self._db.execute(
            "WITH RECURSIVE up(id, hit) AS ("
            " SELECT current_leaf_id, EXISTS (SELECT 1 FROM memory_starts"
            "  WHERE message_id = current_leaf_id)"
            " FROM conversations WHERE id = ? AND current_leaf_id IS NOT NULL"
            " UNION ALL"
            " SELECT m.parent_id, EXISTS (SELECT 1 FROM memory_starts"
            "  WHERE message_id = m.parent_id)"
            " FROM messages m JOIN up ON m.id = up.id"
            " WHERE m.parent_id IS NOT NULL AND NOT up.hit)"
            " SELECT id FROM up WHERE hit LIMIT 1",
            (conversation_id,),
        ).fetchone()
        return int(row[0]) if row is not None else None

    def set_memory_start(self, message_id: int) -> None:
        """Mark ``message_id`` as where the model's memory begins on its branches (a
        message that no longer exists is ignored: its chat was deleted meanwhile)."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO memory_starts (message_id) "
                       "SELECT id FROM messages WHERE id = ?", (message_id,))

    # -- branches ---------------------------------------------------------------------------
    def versions(self, message_id: int) -> list[Message]:
        """The message and its alternatives (same conversation, same parent), oldest
        first: the versions an edit or a regeneration left."""
        message = self.get_message(message_id)
        if message is None:
            return []
        rows = self._db.execute(
            "SELECT * FROM messages WHERE conversation_id = ? AND parent_id IS ? ORDER BY id",
            (message.conversation_id, message.parent_id)).fetchall()
        return [_message(r) for r in rows]

    def version_counts(self, conversation_id: int) -> dict[int, tuple[int, int]]:
        """For every message with alternatives: (its position, how many), 1-based."""
        rows = self._db.execute(
            "SELECT id, ROW_NUMBER() OVER w AS pos, COUNT(*) OVER w AS n FROM messages "
            "WHERE conversation_id = ? "
            "WINDOW w AS (PARTITION BY parent_id ORDER BY id "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
            (conversation_id,)).fetchall()
        # ROW_NUMBER ignores the frame; COUNT uses the whole partition.
        return {int(r["id"]): (int(r["pos"]), int(r["n"])) for r in rows if r["n"] > 1}

    def version_counts_of(self, message_ids: list[int]) -> dict[int, tuple[int, int]]:
        """``version_counts`` for these messages only (a page on screen), so opening a
        long chat does not count the versions of all its messages."""
        if not message_ids:
            return {}
        marks = ",".join("?" * len(message_ids))
        rows = self._db.execute(
            "SELECT m.id,"
            " (SELECT COUNT(*) FROM messages s WHERE s.parent_id IS m.parent_id"
            "   AND s.conversation_id = m.conversation_id AND s.id <= m.id) AS pos,"
            " (SELECT COUNT(*) FROM messages s WHERE s.parent_id IS m.parent_id"
            "   AND s.conversation_id = m.conversation_id) AS n"
            f" FROM messages m WHERE m.id IN ({marks})", message_ids).fetchall()
        return {int(r["id"]): (int(r["pos"]), int(r["n"])) for r in rows if r["n"] > 1}

    def show_branch(self, message_id: int) -> None:
        """Make the branch through ``message_id`` the one on screen: its leaf is found
        by following the newest follower of each message down."""
        message = self.get_message(message_id)
        if message is None:
            raise KeyError(f"no message {message_id}")
        leaf = message_id
        while True:
            row = self._db.execute("SELECT MAX(id) FROM messages WHERE parent_id = ?",
                                   (leaf,)).fetchone()
            if row is None or row[0] is None:
                break
            leaf = int(row[0])
        self.set_leaf(message.conversation_id, leaf)

    def set_leaf(self, conversation_id: int, message_id: int | None) -> None:
        """Point the conversation at exactly this leaf (None: before the first message)."""
        with self._transaction() as db:
            db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                       (message_id, conversation_id))

    def search(self, query: str, limit: int = 50) -> list[Message]:
        """Messages that contain every word of ``query``, newest first; the last word
        matches as a prefix (it may still be being typed), the others as whole words.

        FTS5 reads a prefix's matches in full before it can order them, so a prefix
        costs time in proportion to how common the word is (a common word over a
        million messages: 40 ms, two of them 130 ms); a whole word is read newest first
        and the read stops after ``limit`` matches (under 1 ms). Ranking by relevance
        (bm25) scores every match first: 150 ms to over a second at that size."""
        terms = [t.replace('"', '""') for t in query.split()]
        if not terms:
            return []
        match = " ".join([*(f'"{t}"' for t in terms[:-1]), f'"{terms[-1]}"*'])
        try:
            # The order and the limit are applied inside the FTS query, so only the
            # messages shown are read from the messages table.
            rows = self._db.execute(
                "SELECT m.* FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?"
                " ORDER BY rowid DESC LIMIT ?) f JOIN messages m ON m.id = f.rowid"
                " ORDER BY m.id DESC",
                (match, limit),
            ).fetchall()
        except sqlite.Error as exc:
            raise StoreError(f"Searching the chats failed: {exc}.") from exc
        return [_message(r) for r in rows]

    # -- app state ------------------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        """A small piece of app state (such as the last open conversation)."""
        row = self._db.execute("SELECT value FROM app_state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_state(self, key: str, value: str) -> None:
        """Remember a small piece of app state."""
        with self._transaction() as db:
            db.execute("INSERT INTO app_state (key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def delete_state(self, key: str) -> None:
        """Forget a piece of app state."""
        with self._transaction() as db:
            db.execute("DELETE FROM app_state WHERE key = ?", (key,))

    def states(self, prefix: str) -> dict[str, str]:
        """Every piece of app state whose key starts with ``prefix``."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._db.execute("SELECT key, value FROM app_state WHERE key LIKE ? ESCAPE '\\'",
                                (pattern,)).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}


# The ids of the messages on a conversation's branch on screen, from its leaf up.
_BRANCH = """
    WITH RECURSIVE branch(id) AS (
        SELECT current_leaf_id FROM conversations
         WHERE id = ? AND current_leaf_id IS NOT NULL
        UNION ALL
        SELECT m.parent_id FROM messages m JOIN branch b ON m.id = b.id
         WHERE m.parent_id IS NOT NULL
    )
"""

_BRANCH_SELECT = (f"{_BRANCH} SELECT m.* FROM branch b CROSS JOIN messages m ON m.id = b.id"
                  " ORDER BY m.id")  # CROSS JOIN: see _PAGE_SELECT

# One step up a branch, for a walk that stops after ``depth`` messages (the last
# parameter), and what such a walk returns: its messages, oldest first.
_UP_STEP = (" UNION ALL SELECT m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.id"
            " WHERE m.parent_id IS NOT NULL AND up.depth < ?")
# CROSS JOIN keeps the walk as the outer loop: without it, SQLite 3.53 (sqlcipher3's)
# reads the whole messages table in id order to skip the sort (0.1-0.7 s at 1,000,000
# messages, against well under 1 ms for the 60 rows looked up by id).
_PAGE_SELECT = "SELECT m.* FROM up CROSS JOIN messages m ON m.id = up.id ORDER BY m.id"
