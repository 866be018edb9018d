"""Passage vectors in the same database (sqlite-vec), and reciprocal-rank fusion.

Each collection with an embedding model has its own ``vec0`` table, ``doc_vec_<id>``,
sized to the model's dimension, with the chunk's id as rowid: changing the model drops
it and the next update fills a new one. The extension is loaded into the store's own
connection, so the vectors sit in the same (encrypted) file as the text.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: Reciprocal-rank fusion's constant (Cormack et al. 2009; GPT4All uses the same).
RRF_K = 60


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


def pack(vector: Sequence[float]) -> bytes:
    """A vector as sqlite-vec's float32 blob."""
    return struct.pack(f"{len(vector)}f", *vector)


def create(db: Any, collection_id: int, dim: int) -> None:
    """A new, empty vector table for a collection (any old one dropped)."""
    if not 1 <= dim <= 8192:
        raise ValueError(f"an embedding dimension of {dim} is not supported")
    db.execute(f"DROP TABLE IF EXISTS {table(collection_id)}")
    db.execute(f"CREATE VIRTUAL TABLE {table(collection_id)} USING vec0("
               f"embedding float[{int(dim)}] distance_metric=cosine)")


def drop(db: Any, collection_id: int) -> None:
    """Forget a collection's vectors."""
    db.execute(f"DROP TABLE IF EXISTS {table(collection_id)}")


def insert(db: Any, collection_id: int, rows: Iterable[tuple[int, Sequence[float]]]) -> None:
    """Store (chunk id, vector) pairs."""
    db.executemany(f"INSERT INTO {table(collection_id)}(rowid, embedding) VALUES (?, ?)",
                   [(chunk_id, pack(v)) for chunk_id, v in rows])


def delete_file(db: Any, collection_id: int, file_id: int) -> None:
    """Drop the vectors of one file's chunks (before the chunks themselves go)."""
    db.execute(f"DELETE FROM {table(collection_id)} WHERE rowid IN "
               "(SELECT id FROM doc_chunks WHERE file_id = ?)", (file_id,))


def missing(db: Any, collection_id: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` (chunk id, text) of the collection's chunks without a vector."""
    rows = db.execute(
        f"SELECT c.id, c.text FROM doc_chunks c WHERE c.coll = ? AND NOT EXISTS "
        f"(SELECT 1 FROM {table(collection_id)} v WHERE v.rowid = c.id) ORDER BY c.id "
        "LIMIT ?", (f"c{int(collection_id)}", limit)).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def nearest(db: Any, collection_id: int, vector: Sequence[float], k: int
            ) -> list[tuple[int, float]]:
    """The ``k`` chunks nearest to ``vector`` (cosine distance), nearest first."""
    rows = db.execute(
        f"SELECT rowid, distance FROM {table(collection_id)} WHERE embedding MATCH ? "
        "AND k = ? ORDER BY distance", (pack(vector), k)).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def fuse(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each id scores the sum of 1 / (k + rank) over the lists
    it is in (rank from 1); best first, ties by first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
