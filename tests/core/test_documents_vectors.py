"""Vectors in SQLite through sqlite-vec, and reciprocal-rank fusion."""

from __future__ import annotations

import pytest
from sqlcipher3 import dbapi2 as sqlite

from llamadesk.core.documents import vectors


def test_fusion_rewards_agreement() -> None:
    fused = vectors.fuse([[1, 2, 3], [3, 1, 4]])
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert vectors.fuse([]) == []


def test_nearest_in_a_vec0_table() -> None:
    db = sqlite.connect(":memory:")
    vectors.load_vec(db)
    db.execute("CREATE TABLE doc_chunks (id INTEGER PRIMARY KEY, file_id INT, coll TEXT, "
               "text TEXT)")
    db.executemany("INSERT INTO doc_chunks VALUES (?, ?, 'c1', ?)",
                   [(1, 1, "a"), (2, 1, "b"), (3, 2, "c")])
    vectors.create(db, 1, 3)
    vectors.insert(db, 1, [(1, [1.0, 0.0, 0.0]), (2, [0.0, 1.0, 0.0])])
    assert vectors.missing(db, 1, 10) == [(3, "c")]
    vectors.insert(db, 1, [(3, [0.7, 0.7, 0.0])])
    assert [i for i, _ in vectors.nearest(db, 1, [0.9, 0.1, 0.0], 2)] == [1, 3]
    vectors.delete_file(db, 1, 1)
    assert [i for i, _ in vectors.nearest(db, 1, [0.9, 0.1, 0.0], 3)] == [3]
    with pytest.raises(ValueError):
        vectors.create(db, 1, 0)
    vectors.drop(db, 1)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'doc_vec_1'").fetchall() \
        == []

