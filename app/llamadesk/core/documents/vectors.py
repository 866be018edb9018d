"""Passage vectors in the same database (sqlite-vec), and reciprocal-rank fusion.

Each collection with an embedding model has its own ``vec0`` table, ``doc_vec_<id>``,
sized to the model's dimension, with the chunk's id as rowid: changing the model drops
it and the next update fills a new one. The extension is loaded into the store's own
connection, so the vectors sit in the same (encrypted) file as the text.

Beside it, ``doc_vecq_<id>`` holds each vector's sign bits (``bit[dim]``, 48 bytes at 384
dimensions) with the float vector as an auxiliary column. A large collection is searched
coarse-then-exact: the Hamming scan of the bits (4.8 MB at 100,000 vectors, which fits
SQLCipher's page cache) picks ``CANDIDATES`` rows, and those are ranked by their exact
cosine distance, read by rowid. The float ``vec0`` scan decrypts every page of a table
too large for the cache on each query; it stays for small collections, where it is fast
and exact. Both tables are written in the same transaction.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: Reciprocal-rank fusion's constant (Cormack et al. 2009; GPT4All uses the same).
RRF_K = 60
#: Collections with fewer vectors are scanned exactly (fast enough, and exact).
COARSE_FROM = 20_000
#: Rows the coarse (Hamming) scan passes on to the exact rescoring, at least; sqlite-vec's
#: scan costs grow with it (~13 ms CPU at 100, ~23 at 200, ~51 at 400 over 100,000).
CANDIDATES = 200


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
    db.execute(f"CREATE VIRTUAL TABLE {table(collection_id)} USING vec0("
               f"embedding float[{int(dim)}] distance_metric=cosine)")
    _create_coarse(db, collection_id, dim)


def _create_coarse(db: Any, collection_id: int, dim: int) -> bool:
    if dim % 8:  # bit vectors come in whole bytes; such a model is always scanned exactly
        return False
    db.execute(f"CREATE VIRTUAL TABLE {coarse_table(collection_id)} USING vec0("
               f"embedding bit[{int(dim)}], +vector blob)")
    return True


def has_coarse(db: Any, collection_id: int) -> bool:
    """Whether the collection has its bit-vector table."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                      (coarse_table(collection_id),)).fetchone() is not None


def lacks_coarse(db: Any, collection_id: int, dim: int) -> bool:
    """Whether the collection could have a bit-vector table and has none yet."""
    return int(dim) % 8 == 0 and not has_coarse(db, collection_id)


def build_coarse(db: Any, collection_id: int, dim: int) -> int:
    """Make the bit-vector table of a collection stored before it existed, from its
    float vectors (in the caller's transaction); the number of vectors, 0 when there
    was nothing to do."""
    if has_coarse(db, collection_id) or not _create_coarse(db, collection_id, dim):
        return 0
    return int(db.execute(
        f"INSERT INTO {coarse_table(collection_id)}(rowid, embedding, vector) "
        f"SELECT rowid, vec_quantize_binary(embedding), embedding "
        f"FROM {table(collection_id)}").rowcount)


def drop(db: Any, collection_id: int) -> None:
    """Forget a collection's vectors."""
    db.execute(f"DROP TABLE IF EXISTS {table(collection_id)}")
    db.execute(f"DROP TABLE IF EXISTS {coarse_table(collection_id)}")


def insert(db: Any, collection_id: int, rows: Iterable[tuple[int, Sequence[float]]]) -> None:
    """Store (chunk id, vector) pairs, in both tables."""
    packed = [(chunk_id, pack(v)) for chunk_id, v in rows]
    db.executemany(f"INSERT INTO {table(collection_id)}(rowid, embedding) VALUES (?, ?)",
                   packed)
    if has_coarse(db, collection_id):
        db.executemany(f"INSERT INTO {coarse_table(collection_id)}(rowid, embedding, vector) "
                       "VALUES (?1, vec_quantize_binary(vec_f32(?2)), ?2)", packed)


def delete_file(db: Any, collection_id: int, file_id: int) -> None:
    """Drop the vectors of one file's chunks (before the chunks themselves go)."""
    names = [table(collection_id)]
    if has_coarse(db, collection_id):
        names.append(coarse_table(collection_id))
    for name in names:
        db.execute(f"DELETE FROM {name} WHERE rowid IN "
                   "(SELECT id FROM doc_chunks WHERE file_id = ?)", (file_id,))


def missing(db: Any, collection_id: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` (chunk id, text) of the collection's chunks without a vector."""
    rows = db.execute(
        f"SELECT c.id, c.text FROM doc_chunks c WHERE c.coll = ? AND NOT EXISTS "
        f"(SELECT 1 FROM {table(collection_id)} v WHERE v.rowid = c.id) ORDER BY c.id "
        "LIMIT ?", (f"c{int(collection_id)}", limit)).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def nearest(db: Any, collection_id: int, vector: Sequence[float], k: int, *,
            coarse_from: int | None = None, candidates: int | None = None
            ) -> list[tuple[int, float]]:
    """The ``k`` chunks nearest to ``vector`` (cosine distance), nearest first: an exact
    scan below ``coarse_from`` vectors (or without the bit table), else the best
    ``candidates`` by Hamming distance of the sign bits rescored exactly (approximate:
    a true neighbour whose bits differ more than the candidates' is missed)."""
    query = pack(vector)
    coarse_from = COARSE_FROM if coarse_from is None else coarse_from
    candidates = CANDIDATES if candidates is None else candidates
    if has_coarse(db, collection_id) and _count(db, collection_id) >= coarse_from:
        rows = db.execute(
            "SELECT rowid, vec_distance_cosine(vector, ?1) AS d FROM ("
            f"SELECT rowid, vector FROM {coarse_table(collection_id)} "
            "WHERE embedding MATCH vec_quantize_binary(vec_f32(?1)) AND k = ?2) "
            "ORDER BY d, rowid LIMIT ?3", (query, max(candidates, k), k)).fetchall()
    else:
        rows = db.execute(
            f"SELECT rowid, distance FROM {table(collection_id)} WHERE embedding MATCH ? "
            "AND k = ? ORDER BY distance", (query, k)).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def _count(db: Any, collection_id: int) -> int:
    # vec0's own rowid table: a b-tree count, not a scan of the vectors.
    return int(db.execute(
        f"SELECT COUNT(*) FROM {coarse_table(collection_id)}_rowids").fetchone()[0])


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each id scores the sum of 1 / (k + rank) over the lists
    it is in (rank from 1); best first, ties by first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
