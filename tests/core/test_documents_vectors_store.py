"""The bit-vector table through a real store file: built for older collections on the
next update, dropped with the model, and (encrypted) never on disk in the clear."""

from __future__ import annotations

import hashlib
import struct
import threading
from pathlib import Path

import pytest
from older_vectors import as_stored_by_an_earlier_version

from llamadesk.core.db import new_key
from llamadesk.core.documents import vectors
from llamadesk.core.documents.index import DocumentIndex
from llamadesk.core.store import ConversationStore

DIM = 64


def hashed_vectors_stand_in(texts: list[str]) -> list[list[float]]:
    """Not an embedding model: a vector per text from its hash (what is stored is what
    is checked here, not retrieval quality)."""
    out = []
    for text in texts:
        seed = hashlib.sha256(text.encode()).digest() * 8
        out.append([(b - 127.5) / 127.5 for b in seed[:DIM]])
    return out


def _index(path: Path, key: bytes | None, folder: Path) -> DocumentIndex:
    for n in range(6):
        (folder / f"note{n}.txt").write_text(f"Note {n}: the pier {n} lamp was mended.\n")
    index = DocumentIndex(ConversationStore(path, key))
    index.add("Notes", [folder])
    index.set_embedding("Notes", "hashed-stand-in", DIM)
    assert index.update("Notes", embed=hashed_vectors_stand_in).embedded == 6
    return index


def _stored_forms(db: object, texts: list[str]) -> list[bytes]:
    forms = []
    for vector in hashed_vectors_stand_in(texts):
        floats = struct.pack(f"{DIM}f", *vector)
        bits = db.execute("SELECT vec_quantize_binary(vec_f32(?))",  # type: ignore[attr-defined]
                          (floats,)).fetchone()[0]
        forms += [floats, bytes(bits)]
    return forms


@pytest.mark.parametrize("encrypted", [False, True])
def test_vectors_and_their_bits_stay_inside_the_cipher(tmp_path: Path,
                                                       encrypted: bool) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    index = _index(data / "store.sqlite3", new_key() if encrypted else None, folder)
    db = index.store.connection
    texts = [str(r[0]) for r in db.execute("SELECT text FROM doc_chunks ORDER BY id")]
    assert vectors.has_coarse(db, 1)
    forms = _stored_forms(db, texts)
    index.store.close()
    on_disk = b"".join(f.read_bytes() for f in data.iterdir())
    found = [form for form in forms if form in on_disk]
    if encrypted:
        assert found == [], "a vector or its bits reached the file in the clear"
        assert {f.name for f in data.iterdir()} <= {
            "store.sqlite3", "store.sqlite3-shm", "store.sqlite3-wal"}
    else:
        # The same check finds them in a plaintext store: it can see them.
        assert len(found) == len(forms)


def test_an_update_moves_older_vectors_over_cancellably_and_a_new_model_drops_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    index = _index(tmp_path / "store.sqlite3", None, folder)
    db = index.store.connection
    with index.store.transaction() as t:
        as_stored_by_an_earlier_version(t, DIM, bits=False)
    query = hashed_vectors_stand_in(["Note 3: the pier 3 lamp was mended."])[0]
    exact = index.search("Notes", "pier lamp", k=3, query_vector=query)
    monkeypatch.setattr(vectors, "MIGRATE_BATCH", 2)
    cancel = threading.Event()
    seen: list[str] = []

    def cancel_after_two_steps(_done: int, _total: int, what: str) -> None:
        seen.append(what)
        if len(seen) == 3:
            cancel.set()

    report = index.update("Notes", progress=cancel_after_two_steps, cancel=cancel)
    assert report.cancelled and seen == [
        "preparing vector search (0 of 0 vectors)",
        "preparing vector search (2 of 6 vectors)",
        "preparing vector search (4 of 6 vectors)"]
    assert vectors.needs_migration(db, 1, DIM)
    assert db.execute("SELECT COUNT(*) FROM doc_vecq_1").fetchone()[0] == 4
    assert index.search("Notes", "pier lamp", k=3, query_vector=query) == exact
    assert not index.update("Notes").cancelled  # a later update finishes it
    assert not vectors.needs_migration(db, 1, DIM)
    assert db.execute("SELECT COUNT(*) FROM doc_vecq_1").fetchone()[0] == 6
    near = vectors.nearest(db, 1, query, 6, coarse_from=0, candidates=6)
    assert [i for i, _ in near] == [i for i, _ in vectors.nearest(db, 1, query, 6)]
    assert index.search("Notes", "pier lamp", k=3, query_vector=query) == exact
    index.set_embedding("Notes", "another-stand-in", 32)
    assert db.execute("SELECT COUNT(*) FROM doc_vecq_1").fetchone()[0] == 0
    index.set_embedding("Notes", None)
    assert not vectors.has_coarse(db, 1)
    index.store.close()


def test_encrypting_a_plaintext_store_keeps_its_document_vectors(tmp_path: Path) -> None:
    from llamadesk.core.store_migrate import encrypt_in_place

    folder = tmp_path / "docs"
    folder.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    index = _index(data / "store.sqlite3", None, folder)
    db = index.store.connection
    query = hashed_vectors_stand_in(["Note 2: the pier 2 lamp was mended."])[0]
    before = index.search("Notes", "lamp", k=4, query_vector=query)
    texts = [str(r[0]) for r in db.execute("SELECT text FROM doc_chunks ORDER BY id")]
    forms = _stored_forms(db, texts)
    index.store.close()
    key = new_key()
    encrypt_in_place(data / "store.sqlite3", key)  # failed with "no such module: vec0"
    on_disk = b"".join(f.read_bytes() for f in data.iterdir())
    assert [form for form in forms if form in on_disk] == []
    again = DocumentIndex(ConversationStore(data / "store.sqlite3", key))
    assert again.search("Notes", "lamp", k=4, query_vector=query) == before
    edb = again.store.connection
    assert vectors.nearest(edb, 1, query, 3, coarse_from=0, candidates=6) == \
        vectors.nearest(edb, 1, query, 3)
    again.store.close()
