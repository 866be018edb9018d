"""Collections in a real SQLite store: indexing, updates, per-file reasons, BM25 search."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from doc_files import write_mixed_folder

from llamadesk.core.documents.index import CollectionError, DocumentIndex, fts_terms
from llamadesk.core.store import SCHEMA_VERSION, ConversationStore


@pytest.fixture
def index(tmp_path: Path) -> DocumentIndex:
    store = ConversationStore(tmp_path / "chats.db")
    yield DocumentIndex(store)
    store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_mixed_folder(tmp_path / "docs")


def test_add_update_search_with_places(index: DocumentIndex, folder: Path) -> None:
    index.add("Home", [folder])
    report = index.update("Home")
    assert sorted(Path(p).name for p in report.added) == ["garden.docx", "notes.md",
                                                          "tax.pdf"]
    assert [(Path(p).name, why) for p, why in report.failed] == [
        ("locked.txt", "binary file, not text")]
    hits = index.search("Home", "How much was the tax refund?")
    assert hits[0].where == "tax.pdf p. 2" and "1,234 euros" in hits[0].text
    sun = index.search("Home", "sun for tomatoes", k=1)
    assert [h.where for h in sun] == ["garden.docx § Tomatoes"]
    collection = index.get("Home")
    assert (collection.files, collection.failed, collection.chunks) == (3, 1, 4)
    assert index.failures("Home") == [(str(folder / "locked.txt"), "binary file, not text")]


def test_update_sees_changed_added_removed(index: DocumentIndex, folder: Path) -> None:
    index.add("Home", [folder])
    index.update("Home")
    (folder / "notes.md").write_text("# Cats\nThe cat is now called Pixel.\n")
    (folder / "new.txt").write_text("A new file about kayaks.")
    (folder / "tax.pdf").unlink()
    os.utime(folder / "garden.docx")  # touched, same bytes: not reindexed
    report = index.update("Home")
    assert [Path(p).name for p in report.changed] == ["notes.md"]
    assert [Path(p).name for p in report.added] == ["new.txt"]
    assert [Path(p).name for p in report.removed] == ["tax.pdf"]
    assert report.unchanged == 1
    assert index.search("Home", "Miso") == []
    assert index.search("Home", "Pixel")[0].where == "notes.md § Cats"
    assert index.search("Home", "refund") == []


def test_cancel_keeps_what_was_done(index: DocumentIndex, folder: Path) -> None:
    index.add("Home", [folder])
    cancel = threading.Event()
    seen: list[str] = []

    def progress(done: int, total: int, path: str) -> None:
        seen.append(path)
        if done == 1:
            cancel.set()

    report = index.update("Home", progress=progress, cancel=cancel)
    # Files go in name order: garden.docx indexed, locked.txt refused, then the stop.
    assert report.cancelled and len(seen) == 2
    assert [Path(p).name for p in report.added] == ["garden.docx"]
    assert index.get("Home").files == 1
    rest = index.update("Home")  # the rest on the next update
    assert sorted(Path(p).name for p in rest.added) == ["notes.md", "tax.pdf"]


def test_collections_are_separate_and_removable(index: DocumentIndex, folder: Path,
                                                tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("The cat in this file is called Nori.")
    index.add("Home", [folder])
    index.add("Other", [other])
    index.update("Home")
    index.update("Other")
    assert [h.path for h in index.search("Other", "cat called")] == [str(other)]
    both = index.search(["Home", "Other"], "cat called")
    assert {Path(h.path).name for h in both} == {"notes.md", "other.txt"}
    index.remove("Home")
    assert [c.name for c in index.collections()] == ["Other"]
    rows = index.store.connection.execute("SELECT COUNT(*) FROM doc_chunks").fetchone()[0]
    assert rows == 1, "a removed collection's chunks go with it"
    with pytest.raises(CollectionError, match="no collection named 'Home'"):
        index.search("Home", "cat")
    with pytest.raises(CollectionError, match="already"):
        index.add("Other", [other])


def test_search_is_limited_inside_fts_and_ranked(index: DocumentIndex,
                                                 tmp_path: Path) -> None:
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(30):
        (docs / f"f{i:02}.txt").write_text(f"apple {'apple ' * (i % 5)} file {i}")
    index.add("Fruit", [docs])
    index.update("Fruit")
    hits = index.search("Fruit", "apple", k=5)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted(h.score for h in hits)
    plan = " ".join(str(r[3]) for r in index.store.connection.execute(
        "EXPLAIN QUERY PLAN SELECT rowid FROM doc_chunks_fts WHERE doc_chunks_fts "
        "MATCH 'apple' ORDER BY bm25(doc_chunks_fts) LIMIT 5"))
    assert "VIRTUAL TABLE INDEX" in plan


def test_question_words_and_fts_syntax_are_data(index: DocumentIndex, folder: Path) -> None:
    assert fts_terms('What is "NEAR" the cat\'s * name? OR AND') == ["near", "cat",
                                                                     "name"]
    index.add("Home", [folder])
    index.update("Home")
    assert index.search("Home", 'cat" OR coll:c1 *') != []
    assert index.search("Home", "the of and") == []


def test_schema_has_documents(index: DocumentIndex) -> None:
    assert index.store.schema_version == SCHEMA_VERSION
    tables = {r[0] for r in index.store.connection.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table')")}
    assert {"doc_collections", "doc_files", "doc_chunks", "doc_chunks_fts",
            "message_sources"} <= tables


def test_words_in_most_chunks_of_a_large_store_are_left_out(index: DocumentIndex,
                                                            tmp_path: Path) -> None:
    docs = tmp_path / "big"
    docs.mkdir()
    for i in range(1100):  # over PRUNE_FROM_CHUNKS: one chunk per file
        extra = " kayak" if i == 700 else (" paddle" if i % 3 == 0 else "")
        (docs / f"f{i:04}.txt").write_text(f"weekly report {i}{extra}")
    index.add("Big", [docs])
    index.update("Big")
    assert index._informative(["weekly", "report", "kayak", "paddle"]) == ["kayak",
                                                                           "paddle"]
    assert index._informative(["weekly"]) == ["weekly"], "nothing else to match by"
    assert [Path(h.path).name for h in index.search("Big", "weekly kayak report", k=1)] == [
        "f0700.txt"]



def test_word_counts_are_read_again_when_the_chunks_change(index: DocumentIndex,
                                                          tmp_path: Path) -> None:
    docs = tmp_path / "big"
    docs.mkdir()
    for i in range(1100):
        (docs / f"f{i:04}.txt").write_text(f"weekly report {i}" + (" kayak" if i < 3 else ""))
    index.add("Big", [docs])
    index.update("Big")
    assert index._informative(["weekly", "kayak"]) == ["kayak"]
    for i in range(1100, 2300):  # now in most chunks: no weight, left out
        (docs / f"f{i:04}.txt").write_text(f"kayak trip {i}")
    index.update("Big")
    assert index._informative(["weekly", "kayak"]) == ["weekly"]
