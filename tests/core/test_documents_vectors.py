"""Vectors in SQLite through sqlite-vec, and reciprocal-rank fusion."""

from __future__ import annotations

import random

import pytest
from older_vectors import as_stored_by_an_earlier_version
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


def _brute_force(rows: list[tuple[int, list[float]]], query: list[float], k: int
                 ) -> list[int]:
    def distance(v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(v, query, strict=True))
        return 1.0 - dot / (sum(a * a for a in v) ** 0.5 * sum(b * b for b in query) ** 0.5)
    return [i for i, v in sorted(rows, key=lambda r: (distance(r[1]), r[0]))[:k]]


def _tables(db: sqlite.Connection) -> set[str]:
    return {str(r[0]) for r in db.execute(
        "SELECT name FROM sqlite_master WHERE name IN ('doc_vec_1', 'doc_vecq_1')")}


def test_one_copy_of_each_vector_beside_its_bits() -> None:
    db = _chunks_db(30)
    vectors.create(db, 1, 16)
    assert _tables(db) == {"doc_vecq_1"}  # no float vec0 table beside it
    rows = _random_vectors(30, 16, 1)
    vectors.insert(db, 1, rows)
    stored = dict(db.execute("SELECT rowid, vector FROM doc_vecq_1"))
    assert stored == {i: vectors.pack(v) for i, v in rows}
    vectors.delete_file(db, 1, 2)  # chunks 1, 4, 7, ...
    assert _count(db, "doc_vecq_1") == 20
    assert {r[0] for r in db.execute("SELECT rowid FROM doc_vecq_1")} == \
        {i for i, _ in rows if i % 3 != 1}
    vectors.create(db, 1, 24)  # another model: made again, empty
    assert _count(db, "doc_vecq_1") == 0
    vectors.create(db, 1, 12)  # not whole bytes: a float table only, the exact scan
    assert _tables(db) == {"doc_vec_1"} and not vectors.needs_migration(db, 1, 12)
    vectors.insert(db, 1, _random_vectors(3, 12, 2))
    assert len(vectors.nearest(db, 1, [1.0] * 12, 2, coarse_from=0)) == 2
    vectors.drop(db, 1)
    assert db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'doc_vec%'"
                      ).fetchall() == []


def test_the_exact_scan_and_covering_candidates_equal_brute_force() -> None:
    db = _chunks_db(300)
    vectors.create(db, 1, 64)
    rows = _random_vectors(300, 64, 3)
    vectors.insert(db, 1, rows)
    rng = random.Random(4)
    for _ in range(5):
        query = [rng.gauss(0.0, 1.0) for _ in range(64)]
        expected = _brute_force(rows, query, 20)
        exact = vectors.nearest(db, 1, query, 20)  # below COARSE_FROM: the exact scan
        assert [i for i, _ in exact] == expected
        coarse = vectors.nearest(db, 1, query, 20, coarse_from=0, candidates=300)
        assert [i for i, _ in coarse] == expected
        assert [d for _, d in coarse] == pytest.approx([d for _, d in exact], abs=1e-5)
        # Fewer candidates than vectors: the coarse path really ran (a different answer
        # is allowed, the same length is not optional).
        assert len(vectors.nearest(db, 1, query, 20, coarse_from=0, candidates=25)) == 20


@pytest.mark.parametrize("bits", [False, True])
def test_an_earlier_versions_float_table_moves_over_in_steps(bits: bool) -> None:
    db = _chunks_db(60)
    vectors.create(db, 1, 32)
    rows = _random_vectors(50, 32, 5)
    vectors.insert(db, 1, rows)
    as_stored_by_an_earlier_version(db, 32, bits)
    assert vectors.needs_migration(db, 1, 32)
    query = rows[7][1]
    assert [i for i, _ in vectors.nearest(db, 1, query, 5)] == _brute_force(rows, query, 5)
    steps = [vectors.migrate_step(db, 1, 32, batch=20)]
    # A complete bit table (the fourth round's) only loses the float copy.
    assert steps == [(50, 50) if bits else (20, 50)]
    assert vectors.needs_migration(db, 1, 32) is not bits
    # Between steps (an update cancelled here): new vectors go to the float table, which
    # still answers; a removed file's go from both.
    vectors.insert(db, 1, [(i, [float(i % 5)] * 31 + [1.0]) for i in range(51, 61)])
    rows += [(i, [float(i % 5)] * 31 + [1.0]) for i in range(51, 61)]
    vectors.delete_file(db, 1, 3)  # chunks 2, 5, 8, ...
    db.execute("DELETE FROM doc_chunks WHERE file_id = 3")
    rows = [(i, v) for i, v in rows if i % 3 != 2]
    assert vectors.missing(db, 1, 100) == []
    assert [i for i, _ in vectors.nearest(db, 1, query, 5)] == _brute_force(rows, query, 5)
    for _ in range(10):  # bounded: a migration that stops moving must fail, not hang
        if not vectors.needs_migration(db, 1, 32):
            break
        steps.append(vectors.migrate_step(db, 1, 32, batch=20))
    if not bits:
        assert steps[1:] == [(33, 40), (40, 40)]  # 13 of the first 20 left, 20, the last 7
    assert _tables(db) == {"doc_vecq_1"}
    assert dict(db.execute("SELECT rowid, vector FROM doc_vecq_1")) == \
        {i: vectors.pack(v) for i, v in rows}
    assert vectors.migrate_step(db, 1, 32) == (0, 0)  # nothing left to do
    assert [i for i, _ in vectors.nearest(db, 1, query, 5)] == _brute_force(rows, query, 5)
    coarse = vectors.nearest(db, 1, query, 10, coarse_from=0, candidates=len(rows))
    assert [i for i, _ in coarse] == _brute_force(rows, query, 10)


def test_a_migration_ends_when_a_rowid_is_zero() -> None:
    db = _chunks_db(6)
    db.execute("INSERT INTO doc_chunks VALUES (0, 1, 'c1', 't')")  # the bench's ids start at 0
    vectors.create(db, 1, 8)
    rows = [(i, [float(i), 1.0, -1.0, 0.5, 0.0, 2.0, -0.5, 1.0]) for i in range(7)]
    vectors.insert(db, 1, rows)
    as_stored_by_an_earlier_version(db, 8, bits=False)
    steps = [vectors.migrate_step(db, 1, 8, batch=3) for _ in range(3)]
    assert steps == [(3, 7), (6, 7), (7, 7)]
    assert not vectors.needs_migration(db, 1, 8)
    assert dict(db.execute("SELECT rowid, vector FROM doc_vecq_1")) == \
        {i: vectors.pack(v) for i, v in rows}
