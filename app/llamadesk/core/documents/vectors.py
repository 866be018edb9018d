"""Passage vectors in the same database (sqlite-vec), and reciprocal-rank fusion.

Each collection with an embedding model has one ``vec0`` table with the chunk's id as
rowid, sized to the model's dimension: changing the model drops it and the next update
fills a new one. The extension is loaded into the store's own connection, so the vectors
sit in the same (encrypted) file as the text.

``doc_vecq_<id>`` holds each vector's sign bits (``bit[dim]``, 48 bytes at 384
dimensions) and the float vector itself as an auxiliary column, its only copy. A large
collection is searched coarse-then-exact: the Hamming scan of the bits (4.8 MB at
100,000 vectors, which fits SQLCipher's page cache) picks ``CANDIDATES`` rows, and those
are ranked by their exact cosine distance, read by rowid. A small one is scanned
exactly over the auxiliary column. A model whose dimension is not whole bytes has no
bits: its vectors are in a float ``vec0`` table, ``doc_vec_<id>``, scanned exactly.

Collections stored by earlier versions have ``doc_vec_<id>`` (and perhaps a complete or
partial ``doc_vecq_<id>``); ``migrate_step`` moves them over in batches by rowid, each
its own transaction, so an update can stop between two and the next one goes on.
Until it is done, the float table is the complete copy: it takes new vectors and
answers searches.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

log = logging.getLogger(__name__)

#: Reciprocal-rank fusion's constant (Cormack et al. 2009; GPT4All uses the same).
RRF_K = 60
#: Collections with fewer vectors are scanned exactly (fast enough, and exact).
COARSE_FROM = 20_000
#: Rows the coarse (Hamming) scan passes on to the exact rescoring, at least; sqlite-vec's
#: scan costs grow with it (~13 ms CPU at 100, ~23 at 200, ~51 at 400 over 100,000).
CANDIDATES = 200
#: Vectors an earlier version's float table gives the bit-vector table per transaction
#: (0.33–0.43 s CPU each over 100,000 plaintext; Cancel waits at most one).
MIGRATE_BATCH = 5_000


class VectorsUnavailableError(Exception):
    """sqlite-vec cannot be loaded here; keyword search still works."""


def load_vec(db: Any) -> None:
    """Load sqlite-vec into ``db`` (a connection from core/db.py); VectorsUnavailableError
    when the package or the connection's extension loading is missing."""
    try:
        import sqlite_vec
    except ImportError as exc:
        raise VectorsUnavailableError("sqlite-vec is not installed") from exc
    if not hasattr(db, "enable_load_extension"):
        raise VectorsUnavailableError("this SQLite build cannot load extensions")
    try:
        db.enable_load_extension(True)
        try:
            sqlite_vec.load(db)
        finally:
            db.enable_load_extension(False)  # nothing else may load code into it
    except Exception as exc:  # the driver's own OperationalError
        raise VectorsUnavailableError(f"sqlite-vec could not be loaded: {exc}") from exc


def table(collection_id: int) -> str:
    """The vec0 table of a collection."""
    return f"doc_vec_{int(collection_id)}"


def coarse_table(collection_id: int) -> str:
    """The bit-vector table of a collection (sign bits + the float vector)."""
    return f"doc_vecq_{int(collection_id)}"


def pack(vector: Sequence[float]) -> bytes:
    """A vector as sqlite-vec's float32 blob."""
    return struct.pack(f"{len(vector)}f", *vector)


def create(db: Any, collection_id: int, dim: int) -> None:
    """A new, empty vector table for a collection (any old one dropped)."""
    if not 1 <= dim <= 8192:
        raise ValueError(f"an embedding dimension of {dim} is not supported")
    drop(db, collection_id)
    if dim % 8:  # bit vectors come in whole bytes; such a model is always scanned exactly
        db.execute(f"CREATE VIRTUAL TABLE {table(collection_id)} USING vec0("
                   f"embedding float[{int(dim)}] distance_metric=cosine)")
    else:
        _create_coarse(db, collection_id, dim)


def _create_coarse(db: Any, collection_id: int, dim: int) -> None:
    db.execute(f"CREATE VIRTUAL TABLE {coarse_table(collection_id)} USING vec0("
               f"embedding bit[{int(dim)}], +vector blob)")


def _exists(db: Any, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                      (name,)).fetchone() is not None


def has_coarse(db: Any, collection_id: int) -> bool:
    """Whether the collection has its bit-vector table."""
    return _exists(db, coarse_table(collection_id))


def _floats(db: Any, collection_id: int) -> bool:
    # The float vec0 table: a dimension of whole bits, or a store not yet migrated.
    return _exists(db, table(collection_id))


def _store(db: Any, collection_id: int) -> str:
    """The table holding every vector of the collection."""
    return table(collection_id) if _floats(db, collection_id) else coarse_table(collection_id)


def needs_migration(db: Any, collection_id: int, dim: int) -> bool:
    """Whether the collection's vectors are still in an earlier version's float table."""
    return int(dim) % 8 == 0 and _floats(db, collection_id)


def migrate_step(db: Any, collection_id: int, dim: int, batch: int | None = None
                 ) -> tuple[int, int]:
    """Copy the next ``batch`` float vectors (by rowid) into the bit-vector table, in the
    caller's transaction; after the last, drop the float table. Returns (vectors in the
    bit table, vectors in all); equal when the migration is done."""
    if not needs_migration(db, collection_id, dim):
        return 0, 0
    floats, bits = table(collection_id), coarse_table(collection_id)
    if not has_coarse(db, collection_id):
        _create_coarse(db, collection_id, dim)
    # New chunks get higher ids than any stored (INTEGER PRIMARY KEY), and the float
    # table takes new vectors until the end, so resuming after the highest copied rowid
    # misses none; vectors deleted meanwhile went from both tables.
    done = db.execute(f"SELECT MAX(rowid) FROM {bits}_rowids").fetchone()[0]
    step = int(batch or MIGRATE_BATCH)
    after = "" if done is None else f"WHERE rowid > {int(done)} "  # a rowid may be 0
    rowids = db.execute(f"SELECT rowid FROM {floats}_rowids {after}ORDER BY rowid LIMIT ?",
                        (step,)).fetchall()
    _copy(db, collection_id, rowids)
    if len(rowids) < step:  # the end: anything not copied yet, then the float table goes
        _copy(db, collection_id, db.execute(  # none, as above; checked before the drop
            f"SELECT rowid FROM {floats}_rowids f WHERE NOT EXISTS "
            f"(SELECT 1 FROM {bits}_rowids b WHERE b.rowid = f.rowid)").fetchall())
        db.execute(f"DROP TABLE {floats}")  # the one copy is now the auxiliary column
        return _rows(db, bits), _rows(db, bits)
    return _rows(db, bits), _rows(db, floats)


def migrate(db: Any, transaction: Callable[[], AbstractContextManager[Any]],
            collection_id: int, dim: int, cancel: threading.Event | None = None,
            progress: Callable[[str], None] | None = None) -> bool:
    """Move a collection stored by an earlier version to the bit-vector table, a batch
    per ``transaction()`` (on the indexer's thread; searches stay exact until it is
    done). False when ``cancel`` stopped it: the next call goes on from there."""
    done = total = 0
    while needs_migration(db, collection_id, dim):
        if progress is not None:
            progress(f"preparing vector search ({done} of {total} vectors)")
        if cancel is not None and cancel.is_set():
            return False
        with transaction() as tx:
            done, total = migrate_step(tx, collection_id, dim)
    return True


def _copy(db: Any, collection_id: int, rowids: list[tuple[int]]) -> None:
    # By rowid from vec0's own rowid table, then one point lookup each: vec0's full scan
    # with a rowid range reads past every earlier row on each step (minutes over
    # 100,000); this is ~0.3 s CPU a batch of 5,000.
    db.executemany(
        f"INSERT INTO {coarse_table(collection_id)}(rowid, embedding, vector) "
        "SELECT rowid, vec_quantize_binary(vec_f32(embedding)), embedding "
        f"FROM {table(collection_id)} WHERE rowid = ?", rowids)


def drop(db: Any, collection_id: int) -> None:
    """Forget a collection's vectors."""
    db.execute(f"DROP TABLE IF EXISTS {table(collection_id)}")
    db.execute(f"DROP TABLE IF EXISTS {coarse_table(collection_id)}")


def insert(db: Any, collection_id: int, rows: Iterable[tuple[int, Sequence[float]]]) -> None:
    """Store (chunk id, vector) pairs in the collection's table."""
    packed = [(chunk_id, pack(v)) for chunk_id, v in rows]
    if _floats(db, collection_id):
        db.executemany(f"INSERT INTO {table(collection_id)}(rowid, embedding) "
                       "VALUES (?, ?)", packed)
    else:
        db.executemany(f"INSERT INTO {coarse_table(collection_id)}(rowid, embedding, vector) "
                       "VALUES (?1, vec_quantize_binary(vec_f32(?2)), ?2)", packed)


def delete_file(db: Any, collection_id: int, file_id: int) -> None:
    """Drop the vectors of one file's chunks (before the chunks themselves go)."""
    for name in (table(collection_id), coarse_table(collection_id)):
        if _exists(db, name):
            db.execute(f"DELETE FROM {name} WHERE rowid IN "
                       "(SELECT id FROM doc_chunks WHERE file_id = ?)", (file_id,))


def missing(db: Any, collection_id: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` (chunk id, text) of the collection's chunks without a vector."""
    rows = db.execute(
        f"SELECT c.id, c.text FROM doc_chunks c WHERE c.coll = ? AND NOT EXISTS "
        f"(SELECT 1 FROM {_store(db, collection_id)} v WHERE v.rowid = c.id) ORDER BY c.id "
        "LIMIT ?", (f"c{int(collection_id)}", limit)).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def nearest(db: Any, collection_id: int, vector: Sequence[float], k: int, *,
            coarse_from: int | None = None, candidates: int | None = None
            ) -> list[tuple[int, float]]:
    """The ``k`` chunks nearest to ``vector`` (cosine distance), nearest first: an exact
    scan below ``coarse_from`` vectors (or without bits), else the best ``candidates``
    by Hamming distance of the sign bits rescored exactly (approximate: a true
    neighbour whose bits differ more than the candidates' is missed)."""
    query = pack(vector)
    coarse_from = COARSE_FROM if coarse_from is None else coarse_from
    candidates = CANDIDATES if candidates is None else candidates
    bits = coarse_table(collection_id)
    if _floats(db, collection_id):
        rows = db.execute(
            f"SELECT rowid, distance FROM {table(collection_id)} WHERE embedding MATCH ? "
            "AND k = ? ORDER BY distance", (query, k)).fetchall()
    elif _rows(db, bits) >= coarse_from:
        rows = db.execute(
            "SELECT rowid, vec_distance_cosine(vector, ?1) AS d FROM ("
            f"SELECT rowid, vector FROM {bits} "
            "WHERE embedding MATCH vec_quantize_binary(vec_f32(?1)) AND k = ?2) "
            "ORDER BY d, rowid LIMIT ?3", (query, max(candidates, k), k)).fetchall()
    else:
        # vec0 keeps the auxiliary column in a plain table; reading it directly is ~4x
        # faster than vec0's own full scan (31 against 133 ms CPU at 20,000 vectors).
        aux = f"{bits}_auxiliary"
        source = f"(SELECT rowid, value00 AS vector FROM {aux})" if _exists(db, aux) else bits
        rows = db.execute(
            f"SELECT rowid, vec_distance_cosine(vector, ?1) AS d FROM {source} "
            "ORDER BY d, rowid LIMIT ?2", (query, k)).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def _rows(db: Any, name: str) -> int:
    # vec0's own rowid table: a b-tree count, not a scan of the vectors.
    return int(db.execute(f"SELECT COUNT(*) FROM {name}_rowids").fetchone()[0])


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each id scores the sum of 1 / (k + rank) over the lists
    it is in (rank from 1); best first, ties by first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
