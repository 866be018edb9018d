"""How close the coarse vector path (sign bits, Hamming top C, exact rescoring) comes to
the exact nearest neighbours, on real all-MiniLM-L6-v2 vectors and on the synthetic sets
of `bench/docs_vector_metrics.py`; with and without centring the vectors (subtracting
the collection's mean before taking the bits). Called by `bench/docs_real_vectors.py`.

The NumPy part mirrors `vectors.nearest` (sqlite-vec's `vec_quantize_binary` sets a bit
for each component > 0); the end result runs the app's own `DocumentIndex.search` on a
store holding the real passages and vectors.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

KS = (5, 20)
CANDIDATES = (100, 200, 400)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _bits(vecs: Any, centre: Any) -> Any:
    return np.packbits(vecs - centre > 0, axis=1)


def overlaps(vecs: Any, queries: Any, centre: Any | None,
             candidates: tuple[int, ...] = CANDIDATES) -> dict[str, float]:
    """Mean overlap of the coarse top k with the exact top k, per k and candidate count."""
    centre = np.zeros(vecs.shape[1], np.float32) if centre is None else centre
    packed, qpacked = _bits(vecs, centre), _bits(queries, centre)
    norms = np.linalg.norm(vecs, axis=1)
    out: dict[str, list[float]] = {}
    for q, qbits in zip(queries, qpacked, strict=True):
        cos = vecs @ q / (norms * np.linalg.norm(q))
        hamming = _POPCOUNT[packed ^ qbits].sum(axis=1, dtype=np.int32)
        order = np.lexsort((np.arange(len(vecs)), hamming))  # ties by rowid, as vec0
        for k in KS:
            exact = set(np.argsort(-cos, kind="stable")[:k].tolist())
            for c in candidates:
                picked = order[:c]
                top = picked[np.argsort(-cos[picked], kind="stable")[:k]]
                out.setdefault(f"k{k}_c{c}", []).append(len(exact & set(top.tolist())) / k)
    return {key: round(float(np.mean(v)), 3) for key, v in out.items()}


def _synthetic(kind: str, n: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    dim = 384
    if kind == "clustered":  # the bench's: 1,000 centres + as much noise
        centres = rng.standard_normal((1_000, dim)).astype(np.float32)
        vecs = centres[rng.integers(0, 1_000, n)] + rng.standard_normal((n, dim))
    else:  # every component N(0, 1)
        vecs = rng.standard_normal((n, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    picks = rng.integers(0, n, 20)
    noise = rng.standard_normal((20, dim)) * (0.05 if kind == "clustered" else 1.0 / 20**0.5)
    queries = vecs[picks] + noise.astype(np.float32)
    return vecs, queries


def _centres(vecs: Any) -> dict[str, Any]:
    return {"none": None, "mean": vecs.mean(axis=0),
            "mean of the first 1,000": vecs[:1_000].mean(axis=0)}


def evaluate(data: dict[str, Any]) -> dict[str, Any]:
    """Overlaps on the real and the synthetic vectors, and the end results."""
    vecs, qvecs = data["vectors"], data["qvectors"]
    out: dict[str, Any] = {"passages": len(vecs), "questions": len(qvecs),
                           "mean_cosine_to_centroid": round(float(np.mean(
                               vecs @ (vecs.mean(0) / np.linalg.norm(vecs.mean(0))))), 3)}
    # A smaller corpus gets as large a share of candidates as 200 of 20,000 and more.
    scaled = tuple(sorted({max(5, len(vecs) * c // 20_000) for c in CANDIDATES}
                          | set(CANDIDATES)))
    out["candidates_real"] = scaled
    out["real_minilm"] = {name: overlaps(vecs, qvecs, c, scaled)
                          for name, c in _centres(vecs).items()}
    for kind in ("clustered", "random"):
        svecs, squeries = _synthetic(kind, int(data.get("synthetic_n", 100_000)), 21)
        out[f"synthetic_{kind}"] = {name: overlaps(svecs, squeries, c)
                                         for name, c in _centres(svecs).items()
                                         if name != "mean of the first 1,000"}
    out["end_result"] = end_result(data)
    return out


def end_result(data: dict[str, Any]) -> dict[str, Any]:
    """recall@5 of each question's own passage through `DocumentIndex.search`: keyword,
    vectors (exact scan, coarse path), hybrid (exact, coarse); and per-query times."""
    from llamadesk.core.documents import vectors
    from llamadesk.core.documents.index import DocumentIndex
    from llamadesk.core.store import ConversationStore

    texts, questions = [str(t) for t in data["texts"]], [str(q) for q in data["questions"]]
    answers = [int(a) + 1 for a in data["answers"]]  # chunk ids from 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "real.sqlite3"
        _chunks(path, texts)
        store = ConversationStore(path)
        try:
            index = DocumentIndex(store)
            index.set_embedding("real", "all-MiniLM-L6-v2", 384)
            for start in range(0, len(texts), 1_000):
                with store.transaction() as db:
                    vectors.insert(db, 1, ((i + 1, data["vectors"][i].tolist())
                                           for i in range(start, min(len(texts), start + 1_000))))
            return _recalls(index, vectors, questions, answers, data["qvectors"])
        finally:
            store.close()


def _recalls(index: Any, vectors: Any, questions: list[str], answers: list[int],
             qvecs: Any) -> dict[str, Any]:
    found: dict[str, int] = {}
    cpu: dict[str, list[float]] = {}
    for question, answer, qv in zip(questions, answers, qvecs, strict=True):
        for name in ("keyword", "vectors_exact", "vectors_coarse", "hybrid_exact",
                     "hybrid_coarse"):
            started = time.process_time()
            top = _top5(index, vectors, name, question, qv.tolist())
            cpu.setdefault(name, []).append((time.process_time() - started) * 1000)
            found[name] = found.get(name, 0) + (answer in top)
    return {"recall_at_5": {k: round(v / len(questions), 3) for k, v in found.items()},
            "cpu_ms_median": {k: round(float(np.median(v)), 1) for k, v in cpu.items()}}


def _top5(index: Any, vectors: Any, name: str, question: str, vector: list[float]
          ) -> list[int | None]:
    start = 0 if name.endswith("coarse") else 1 << 40  # the coarse path forced on or off
    if name == "keyword":
        return [p.chunk_id for p in index.search("real", question, k=5)]
    if name.startswith("vectors"):
        return [i for i, _ in vectors.nearest(index.store.connection, 1, vector, 5,
                                              coarse_from=start)]
    saved, vectors.COARSE_FROM = vectors.COARSE_FROM, start
    try:
        return [p.chunk_id for p in index.search("real", question, k=5,
                                                 query_vector=vector)]
    finally:
        vectors.COARSE_FROM = saved


def _chunks(path: Path, texts: list[str]) -> None:
    from llamadesk.core.store import ConversationStore

    ConversationStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.execute("INSERT INTO doc_collections (id, name, created_at) VALUES (1, 'real', 0)")
    files = max(len(texts) // 50, 1)
    db.executemany("INSERT INTO doc_files (id, collection_id, path) VALUES (?, 1, ?)",
                   [(f, f"/docstrings/file{f}.txt") for f in range(1, files + 1)])
    db.executemany("INSERT INTO doc_chunks (id, file_id, coll, ordinal, page, heading, text) "
                   "VALUES (?, ?, 'c1', ?, NULL, NULL, ?)",
                   ((i + 1, 1 + i % files, i, t) for i, t in enumerate(texts)))
    db.execute("COMMIT")
    db.close()
