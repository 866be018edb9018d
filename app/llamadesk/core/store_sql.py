"""The chat database's forward migrations: SQL scripts, applied in order by
``ConversationStore`` (each in one transaction with its version bump)."""

from __future__ import annotations

from llamadesk.core.store_sql_documents import MIGRATION_6

_MIGRATION_1 = """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            model_id TEXT,
            system_prompt TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            current_leaf_id INTEGER
        );
        CREATE INDEX conversations_updated ON conversations(updated_at DESC, id DESC);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL
                REFERENCES conversations(id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            model_id TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            ttft_ms REAL,
            tokens_per_s REAL,
            prompt_tokens_per_s REAL,
            finish_reason TEXT
        );
        CREATE INDEX messages_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_parent ON messages(parent_id);
        CREATE TABLE app_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Full-text search over message text, kept in step by triggers.
_MIGRATION_2 = """
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id'
        );
        INSERT INTO messages_fts(rowid, content) SELECT id, content FROM messages;
        CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content)
                VALUES ('delete', old.id, old.content);
        END;
        CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content)
                VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
"""

# Where the model's memory begins, when a chat outgrew the context: a marked message is
# the first one the model still sees, for every branch whose path passes through it.
_MIGRATION_3 = """
        CREATE TABLE memory_starts (
            message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE
        );
"""

# Why a reply was interrupted (a remote server that died mid-reply), in words.
_MIGRATION_4 = """
        ALTER TABLE messages ADD COLUMN finish_detail TEXT;
"""

# Where a conversation came from when not the window or the CLI ("api": kept from the
# local API at the user's request).
_MIGRATION_5 = """
        ALTER TABLE conversations ADD COLUMN origin TEXT;
"""

# Whose KV state may be kept across launches (core/store_kv.py): a mark per conversation
# sent to, with a random epoch. Sending a message marks its conversation (a mark already
# there keeps its epoch); deleting or editing a message of it, or changing its system
# prompt, drops the mark. A state is written and read back only under the epoch the
# mark had when the model read that conversation, so it never keeps text the user took
# back, nor passes to a new conversation that got a deleted one's id. The states
# themselves live in a file of their own: dropping a mark here stays cheap.
_MIGRATION_7 = """
        CREATE TABLE kv_marks (
            conversation_id INTEGER PRIMARY KEY
                REFERENCES conversations(id) ON DELETE CASCADE,
            epoch BLOB NOT NULL
        );
        CREATE TRIGGER kv_marks_on_send AFTER INSERT ON messages
            WHEN new.role = 'user' BEGIN
            INSERT OR IGNORE INTO kv_marks (conversation_id, epoch)
                VALUES (new.conversation_id, randomblob(16));
        END;
        CREATE TRIGGER kv_marks_on_delete AFTER DELETE ON messages BEGIN
            DELETE FROM kv_marks WHERE conversation_id = old.conversation_id;
        END;
        CREATE TRIGGER kv_marks_on_edit AFTER UPDATE OF content ON messages BEGIN
            DELETE FROM kv_marks WHERE conversation_id = old.conversation_id;
        END;
        CREATE TRIGGER kv_marks_on_system_prompt AFTER UPDATE OF system_prompt
            ON conversations WHEN old.system_prompt IS NOT new.system_prompt BEGIN
            DELETE FROM kv_marks WHERE conversation_id = old.id;
        END;
"""

#: Forward migrations (SQL scripts); index i takes the schema from version i to i + 1.
MIGRATIONS: list[str] = [_MIGRATION_1, _MIGRATION_2, _MIGRATION_3, _MIGRATION_4,
                         _MIGRATION_5, MIGRATION_6, _MIGRATION_7]
SCHEMA_VERSION = len(MIGRATIONS)
