"""Stores as earlier versions left their document vectors, for the migration's tests."""

from __future__ import annotations

from typing import Any


def as_stored_by_an_earlier_version(db: Any, dim: int, bits: bool) -> None:
    """Give collection 1 an earlier version's float ``vec0`` table holding the vectors
    of its bit table; without ``bits`` the bit table goes (before the fourth round)."""
    db.execute(f"CREATE VIRTUAL TABLE doc_vec_1 USING vec0(embedding float[{dim}] "
               "distance_metric=cosine)")
    db.execute("INSERT INTO doc_vec_1(rowid, embedding) SELECT rowid, vector FROM doc_vecq_1")
    if not bits:
        db.execute("DROP TABLE doc_vecq_1")
