"""The bounded BM25 search gives the same passages and scores as scoring every match."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from llamadesk.core.documents import bm25_bounded
from llamadesk.core.documents.index import DocumentIndex
from llamadesk.core.documents.keywords import fts_terms
from llamadesk.core.store import ConversationStore

#: Common words first (Zipf weights), so questions mix words found in a quarter of the
#: passages with rare ones: both the bounded search and its fallback are reached.
VOCAB = ["north", "river", "market", "square", "road", "hill", "field", "street", "park",
         "budget", "weekly", "report", "harbour", "clock", "bell", "organ", "lantern",
         "kayak", "paddle", "tanaka", "march", "okafor"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> DocumentIndex:
    """1,600 passages in two collections, written through the app's schema and triggers
    (over ``PRUNE_FROM_CHUNKS``, so the bounded search runs)."""
    store = ConversationStore(tmp_path_factory.mktemp("bm25") / "chats.db")
    rng = random.Random(7)
    vocab = [*VOCAB, *(f"filler{i}" for i in range(200))]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    with store.transaction() as db:
        db.executemany("INSERT INTO doc_collections (id, name, created_at) VALUES (?, ?, 0)",
                       [(1, "one"), (2, "two")])
        db.executemany("INSERT INTO doc_files (id, collection_id, path) VALUES (?, ?, ?)",
                       [(f, 1 + f % 2, f"/docs/f{f}.txt") for f in range(40)])
        db.executemany(
            "INSERT INTO doc_chunks (file_id, coll, ordinal, heading, text) "
            "VALUES (?, ?, ?, ?, ?)",
            [(c % 40, f"c{1 + c % 40 % 2}", c,
              rng.choice(VOCAB) if c % 7 == 0 else None,
              " ".join(rng.choices(vocab, weights=weights, k=rng.randint(8, 60))))
             for c in range(1600)])
    yield DocumentIndex(store)
    store.close()


def _every_match(index: DocumentIndex, question: str, k: int, where: str
                 ) -> list[tuple[int, float]]:
    terms = index._informative(fts_terms(question))
    return index._bm25("(" + " OR ".join(f'"{t}"' for t in terms) + f"){where}", k)


def test_same_passages_and_scores_as_scoring_every_match(index: DocumentIndex,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    calls: list[str] = []
    real = index._bm25

    def counting(match: str, k: int) -> list[tuple[int, float]]:
        calls.append(match)
        return real(match, k)
    monkeypatch.setattr(index, "_bm25", counting)
    rng = random.Random(11)
    bounded = 0
    for n in range(60):
        question = " ".join(rng.sample(VOCAB, rng.randint(2, 6))) + " zebra"
        k = (1, 5, 20)[n % 3]
        everything = n % 2 == 0
        where = "" if everything else " AND coll : (c2)"
        calls.clear()
        got = index._keyword([2], question, k, everything)
        bounded += any(" AND " in c.split(")")[0] for c in calls)
        want = _every_match(index, question, k, where)
        assert [i for i, _ in got] == [i for i, _ in want], question
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)
    assert bounded > 20, "the subset queries ran for most questions"


def test_a_word_found_nowhere_is_skipped_and_many_words_score_every_match() -> None:
    runs: list[str] = []

    def run(match: str, k: int) -> list[tuple[int, float]]:
        runs.append(match)
        return []
    assert bm25_bounded.best(run, ["zebra"], {"zebra": 0}, 1000, 5) == []
    assert runs == []
    words = [f"w{i}" for i in range(bm25_bounded.MAX_WORDS + 1)]
    bm25_bounded.best(run, words, dict.fromkeys(words, 100), 1000, 5)
    assert runs == ["(" + " OR ".join(f'"{w}"' for w in words) + ")"]


def test_idf_is_clamped_as_fts5_clamps_it() -> None:
    assert bm25_bounded.idf(100, 80) == 1e-6
    assert bm25_bounded.idf(100, 10) == pytest.approx(math.log(90.5 / 10.5))


def test_counts_are_read_again_when_a_chunk_is_replaced(tmp_path: Path) -> None:
    """A chunk deleted and another inserted keep the count and the highest id; the counts
    the bounded search trusts must still change."""
    store = ConversationStore(tmp_path / "chats.db")
    try:
        with store.transaction() as db:
            db.execute("INSERT INTO doc_collections (id, name, created_at) VALUES (1, 'a', 0)")
            db.execute("INSERT INTO doc_files (id, collection_id, path) VALUES (1, 1, '/f')")
            db.executemany("INSERT INTO doc_chunks (file_id, coll, ordinal, text) "
                           "VALUES (1, 'c1', ?, ?)",
                           [(i, f"weekly note {i}") for i in range(1100)])
        index = DocumentIndex(store)
        assert index._weighed(["kayak"])[1] == {"kayak": 0}
        with store.transaction() as db:
            db.execute("DELETE FROM doc_chunks WHERE id = 1100")
            db.execute("INSERT INTO doc_chunks (id, file_id, coll, ordinal, text) "
                       "VALUES (1100, 1, 'c1', 0, 'kayak trip')")
        assert index._weighed(["kayak"])[1] == {"kayak": 1}
        assert [p.text for p in index.search("a", "kayak")] == ["kayak trip"]
    finally:
        store.close()
