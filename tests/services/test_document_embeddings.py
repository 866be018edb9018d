"""Hybrid retrieval on the real bundled model, standing in as the embedding model (it is
a chat model, mean-pooled: the plumbing is real, the quality is not an embedding
model's). Vectors live in the store's own database through sqlite-vec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.documents.index import DocumentIndex
from llamadesk.core.store import ConversationStore
from llamadesk.services.doc_embedder import DocumentEmbedder, prefixes
from llamadesk.services.engine_errors import EngineError

STAND_IN_ID = "smollm2-stand-in-embedder"


@pytest.fixture
def stand_in_embedder(bundled_model_path: Path) -> Iterator[DocumentEmbedder]:
    embedder = DocumentEmbedder(bundled_model_path, STAND_IN_ID, n_threads=1)
    yield embedder
    embedder.close()


@pytest.fixture
def index(tmp_path: Path) -> Iterator[DocumentIndex]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "boat.md").write_text("# Boat\nThe sailing boat is moored at pier nine.\n")
    (docs / "cat.md").write_text("# Cat\nThe cat sleeps on the warm windowsill.\n")
    (docs / "tax.txt").write_text("The tax refund for 2025 was 1,234 euros.\n")
    store = ConversationStore(tmp_path / "chats.sqlite3")
    idx = DocumentIndex(store)
    idx.add("Home", [docs])
    yield idx
    store.close()


def test_vectors_are_made_kept_in_step_and_fused(index: DocumentIndex,
                                                 stand_in_embedder: DocumentEmbedder,
                                                 tmp_path: Path) -> None:
    dim = stand_in_embedder.dim
    assert dim == 576  # SmolLM2-135M's width
    index.set_embedding("Home", STAND_IN_ID, dim)
    report = index.update("Home", embed=stand_in_embedder.documents)
    assert (report.embedded, report.unembedded) == (3, 0)
    collection = index.get("Home")
    assert (collection.embed_model, collection.embed_dim) == (STAND_IN_ID, dim)
    db = index.store.connection
    # One copy of each vector, beside its sign bits (576 is whole bytes).
    assert db.execute("SELECT COUNT(*) FROM doc_vecq_1").fetchone()[0] == 3
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'doc_vec_1'"
                      ).fetchall() == []

    question = "When is the refund of the tax?"
    vector = stand_in_embedder.query(question)
    hybrid = index.search("Home", question, k=3, query_vector=vector)
    keyword = index.search("Home", question, k=3)
    assert hybrid[0].path == keyword[0].path and hybrid[0].path.endswith("tax.txt"), \
        "a passage both rankings agree on comes first"
    assert len(hybrid) == 3, "vectors find passages with none of the question's words"
    assert len(keyword) == 1

    # A removed file's vectors go with it; a changed file's are made again.
    (tmp_path / "docs" / "cat.md").unlink()
    (tmp_path / "docs" / "boat.md").write_text("# Boat\nThe boat is now at pier ten.\n")
    again = index.update("Home", embed=stand_in_embedder.documents)
    assert (again.embedded, again.unembedded) == (1, 0)
    assert [r[0] for r in db.execute("SELECT rowid FROM doc_vecq_1 ORDER BY 1")] == \
        [r[0] for r in db.execute("SELECT c.id FROM doc_chunks c JOIN doc_files f "
                                  "ON f.id = c.file_id WHERE f.collection_id = 1 "
                                  "ORDER BY 1")]

    # Without the embedder at hand, new passages wait for one, found by keywords meanwhile.
    (tmp_path / "docs" / "new.txt").write_text("A kayak is a small boat.")
    later = index.update("Home")
    assert (later.embedded, later.unembedded) == (0, 1)
    assert index.search("Home", "kayak")[0].path.endswith("new.txt")

    # Another model: the old vectors are dropped, and the next update embeds everything.
    index.set_embedding("Home", "other-model", 8)
    assert db.execute("SELECT COUNT(*) FROM doc_vecq_1").fetchone()[0] == 0
    index.set_embedding("Home", None)
    assert index.get("Home").embed_model is None
    index.remove("Home")
    assert db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'doc_vec_%'"
                      ).fetchall() == []


def test_task_prefixes_by_model() -> None:
    assert prefixes("nomic-embed-text-v1.5-q8_0") == ("search_document: ", "search_query: ")
    assert prefixes("multilingual-e5-small") == ("passage: ", "query: ")
    assert prefixes("bge-small-en-v1.5")[0] == ""
    assert prefixes(STAND_IN_ID) == ("", "")
    bge = ModelCatalog.load().embedding_for("bge-small-en-v1.5-q8_0")
    assert prefixes("anything", bge) == (
        "", "Represent this sentence for searching relevant passages: ")


def test_a_catalog_model_whose_file_gives_another_dimension_is_refused(
        bundled_model_path: Path) -> None:
    """The stand-in (576 numbers) under a catalog entry that says 384: the wrong file."""
    entry = ModelCatalog.load().embedding_for("bge-small-en-v1.5")
    embedder = DocumentEmbedder(bundled_model_path, STAND_IN_ID, n_threads=2, entry=entry)
    try:
        with pytest.raises(EngineError) as refused:
            _ = embedder.dim
        assert str(refused.value).endswith(
            "makes vectors of 576 numbers; BGE Small English v1.5 makes 384")
    finally:
        embedder.close()
