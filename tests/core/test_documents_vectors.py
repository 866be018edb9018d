"""Vectors in SQLite through sqlite-vec, and reciprocal-rank fusion."""

from __future__ import annotations

import random

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



def _chunks_db(n: int) -> sqlite.Connection:
    db = sqlite.connect(":memory:")
    vectors.load_vec(db)
    db.execute("CREATE TABLE doc_chunks (id INTEGER PRIMARY KEY, file_id INT, coll TEXT, "
               "text TEXT)")
    db.executemany("INSERT INTO doc_chunks VALUES (?, ?, 'c1', 't')",
                   [(i, 1 + i % 3) for i in range(1, n + 1)])
    return db


def _random_vectors(n: int, dim: int, seed: int) -> list[tuple[int, list[float]]]:
    rng = random.Random(seed)
    return [(i, [rng.gauss(0.0, 1.0) for _ in range(dim)]) for i in range(1, n + 1)]


def _count(db: sqlite.Connection, name: str) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0])


def test_the_bit_table_is_kept_in_step_with_the_vectors() -> None:
    db = _chunks_db(30)
    vectors.create(db, 1, 16)
    vectors.insert(db, 1, _random_vectors(30, 16, 1))
    assert _count(db, "doc_vec_1") == _count(db, "doc_vecq_1") == 30
    vectors.delete_file(db, 1, 2)  # chunks 1, 4, 7, ...
    assert _count(db, "doc_vec_1") == _count(db, "doc_vecq_1") == 20
    assert {r[0] for r in db.execute("SELECT rowid FROM doc_vecq_1")} == \
        {r[0] for r in db.execute("SELECT rowid FROM doc_vec_1")}
    vectors.create(db, 1, 24)  # another model: both tables made again, empty
    assert _count(db, "doc_vec_1") == _count(db, "doc_vecq_1") == 0
    vectors.create(db, 1, 12)  # not whole bytes: no bit table, always the exact scan
    assert not vectors.has_coarse(db, 1) and not vectors.lacks_coarse(db, 1, 12)
    vectors.insert(db, 1, _random_vectors(3, 12, 2))
    assert len(vectors.nearest(db, 1, [1.0] * 12, 2, coarse_from=0)) == 2
    vectors.drop(db, 1)
    assert db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'doc_vec%'"
                      ).fetchall() == []


def test_rescored_candidates_equal_the_exact_scan_when_they_cover_everything() -> None:
    db = _chunks_db(300)
    vectors.create(db, 1, 64)
    vectors.insert(db, 1, _random_vectors(300, 64, 3))
    rng = random.Random(4)
    for _ in range(5):
        query = [rng.gauss(0.0, 1.0) for _ in range(64)]
        exact = vectors.nearest(db, 1, query, 20)  # below COARSE_FROM: the float scan
        coarse = vectors.nearest(db, 1, query, 20, coarse_from=0, candidates=300)
        assert [i for i, _ in coarse] == [i for i, _ in exact]
        assert [d for _, d in coarse] == pytest.approx([d for _, d in exact], abs=1e-5)
        # Fewer candidates than vectors: the coarse path really ran (a different answer
        # is allowed, the same length is not optional).
        assert len(vectors.nearest(db, 1, query, 20, coarse_from=0, candidates=25)) == 20


def test_a_collection_stored_before_the_bit_table_gets_it_from_its_vectors() -> None:
    db = _chunks_db(50)
    vectors.create(db, 1, 32)
    db.execute("DROP TABLE doc_vecq_1")  # as an older version stored it
    rows = _random_vectors(50, 32, 5)
    vectors.insert(db, 1, rows)
    assert vectors.lacks_coarse(db, 1, 32)
    query = rows[7][1]
    assert vectors.nearest(db, 1, query, 1, coarse_from=0)[0][0] == 8  # exact, no table
    assert vectors.build_coarse(db, 1, 32) == 50
    assert vectors.build_coarse(db, 1, 32) == 0  # once
    assert not vectors.lacks_coarse(db, 1, 32)
    exact = vectors.nearest(db, 1, query, 10)
    coarse = vectors.nearest(db, 1, query, 10, coarse_from=0, candidates=50)
    assert [i for i, _ in coarse] == [i for i, _ in exact]
    assert coarse[0][0] == 8
