"""The store's tables for documents (migration 6). Beside the other migrations, not in
``core/documents/``: the store applies it, and the documents package uses the store.

``doc_collections`` (a name, its folders and files in ``doc_roots``, and the embedding
model and dimension its vectors were made with, when it has any); ``doc_files`` (path,
mtime, size and sha256 of each indexed file, or why it could not be read); ``doc_chunks``
(the passages, with page or heading); ``doc_chunks_fts`` (FTS5 over the passages, kept by
triggers) and ``doc_chunks_vocab`` (how many chunks hold each word). The ``coll`` column,
``c<collection id>``, lets one MATCH pick a collection, so that BM25's LIMIT applies
inside the full-text query. ``message_sources`` keeps the passages a reply was given, so
they outlive changes to the files and travel with an export.
"""

MIGRATION_6 = """
        CREATE TABLE doc_collections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            updated_at REAL,
            embed_model TEXT,
            embed_dim INTEGER
        );
        CREATE TABLE doc_roots (
            collection_id INTEGER NOT NULL REFERENCES doc_collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            PRIMARY KEY (collection_id, path)
        );
        CREATE TABLE doc_files (
            id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES doc_collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            mtime REAL,
            size INTEGER,
            sha256 TEXT,
            error TEXT,
            UNIQUE (collection_id, path)
        );
        CREATE TABLE doc_chunks (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES doc_files(id) ON DELETE CASCADE,
            coll TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            page INTEGER,
            heading TEXT,
            text TEXT NOT NULL
        );
        CREATE INDEX doc_chunks_file ON doc_chunks(file_id, ordinal);
        CREATE VIRTUAL TABLE doc_chunks_fts USING fts5(
            text, heading, coll, content='doc_chunks', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE doc_chunks_vocab USING fts5vocab(doc_chunks_fts, 'row');
        CREATE TRIGGER doc_chunks_ai AFTER INSERT ON doc_chunks BEGIN
            INSERT INTO doc_chunks_fts(rowid, text, heading, coll)
                VALUES (new.id, new.text, new.heading, new.coll);
        END;
        CREATE TRIGGER doc_chunks_ad AFTER DELETE ON doc_chunks BEGIN
            INSERT INTO doc_chunks_fts(doc_chunks_fts, rowid, text, heading, coll)
                VALUES ('delete', old.id, old.text, old.heading, old.coll);
        END;
        CREATE TABLE message_sources (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            path TEXT NOT NULL,
            page INTEGER,
            heading TEXT,
            text TEXT NOT NULL,
            score REAL,
            PRIMARY KEY (message_id, rank)
        );
"""
