"""Document metrics: keyword retrieval quality on a generated corpus, indexing speed,
BM25 retrieval over 100,000 chunks, the GUI thread's longest stall while the window's
indexer works, and the resident memory while indexing 1,000 PDF pages.

The corpus (``make_corpus``) has 240 documents in six formats (Markdown, text, HTML,
reStructuredText, PDF, DOCX), mostly filler drawn from a Zipf vocabulary, with 36 facts
planted one per document; each question asks for one fact in other words than the
fact's sentence uses ("fixed" for "repaired"), and its answer sits in exactly one
passage. Three other documents name each fact's place and object together, and random
sentences name them apart. recall@5: the share of questions whose
passage is among the five best.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from common import RESULTS_DIR, Goal, Metric, not_measured, repeat, side

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from doc_files import write_docx, write_pdf  # noqa: E402

from llamadesk.core.documents.index import DocumentIndex  # noqa: E402
from llamadesk.core.store import ConversationStore  # noqa: E402

FORMATS = ("md", "txt", "html", "rst", "pdf", "docx")
PLACES = ["harbour", "library", "castle", "village", "museum", "bakery", "station",
          "observatory", "garden", "theatre", "bridge", "school"]
OBJECTS = ["clock", "boiler", "organ", "telescope", "fountain", "elevator", "piano",
           "bell", "gate", "furnace", "printer", "lantern"]
NAMES = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Szabo", "Castillo", "Novak",
         "Haddad", "Ferreira", "Kowalski", "Nakamura", "Brennan", "Petrov", "Duarte",
         "Achebe", "Varga", "Olsen", "Rossi"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
COLOURS = ["green", "brass", "painted white", "old", "new", "loud", "slow"]
_FILLER_TEXT = """
    the a of and to in report meeting budget plan week team project update note review
    schedule summary minutes draft version office order invoice shipment customer supplier
    quarter policy process system record entry account request response letter memo annual
    monthly weekly local regional central north south east west river road hill field
    market street square park
"""
FILLER = _FILLER_TEXT.split()


def _filler(rng: random.Random, words: int) -> str:
    weights = [1.0 / (i + 1) for i in range(len(FILLER))]
    text = " ".join(rng.choices(FILLER, weights=weights, k=words))
    return text.capitalize() + "."


def _write(path: Path, fmt: str, title: str, paragraphs: list[str]) -> Path:
    path = path.with_suffix(f".{fmt}")
    if fmt == "pdf":
        # One page per two paragraphs, lines short enough for a page.
        pages = ["\n".join(_wrap(" ".join(paragraphs[i:i + 2])))
                 for i in range(0, len(paragraphs), 2)]
        return write_pdf(path, pages)
    if fmt == "docx":
        return write_docx(path, [(title, paragraphs[0]), *[(None, p) for p in paragraphs[1:]]])
    if fmt == "html":
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        path.write_text(f"<html><body><h1>{title}</h1>{body}</body></html>")
    elif fmt == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n")
    elif fmt == "rst":
        path.write_text(f"{title}\n{'=' * len(title)}\n\n" + "\n\n".join(paragraphs) + "\n")
    else:
        path.write_text(f"{title}\n\n" + "\n\n".join(paragraphs) + "\n")
    return path


def _wrap(text: str, width: int = 90) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def make_corpus(folder: Path, documents: int = 240, questions: int = 36,
                seed: int = 21) -> list[tuple[str, str]]:
    """Write the corpus into ``folder``; return (question, the answer's unique words)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(p, o) for p in PLACES for o in OBJECTS]
    rng.shuffle(pairs)
    facts = pairs[:questions]
    asked: list[tuple[str, str]] = []
    for n in range(documents):
        place, thing = rng.choice(PLACES), rng.choice(OBJECTS)
        paragraphs = [_filler(rng, rng.randint(40, 120)) for _ in range(rng.randint(3, 7))]
        # Distractors: the same places and objects, in sentences that answer nothing.
        paragraphs.insert(rng.randrange(len(paragraphs)),
                          f"The {thing} near the {place} was inspected and found in order. "
                          + _filler(rng, 30))
        if questions <= n < questions * 4:
            # Three more documents name each fact's place and object together.
            place, thing = facts[n % questions]
            paragraphs.insert(rng.randrange(len(paragraphs) + 1),
                              f"The {thing} of the {place} is {rng.choice(COLOURS)} and was "
                              f"installed in {rng.randint(1890, 1990)}. {_filler(rng, 20)}")
        if n < questions:
            place, thing = facts[n]
            name, month = rng.choice(NAMES), rng.choice(MONTHS)
            day = rng.randint(1, 28)
            fact = (f"The {thing} of the {place} was repaired by {name} on {month} {day}, "
                    f"after it stopped working in the winter.")
            paragraphs.insert(rng.randrange(len(paragraphs) + 1),
                              f"{fact} {_filler(rng, 40)}")
            asked.append((f"Who fixed the {place}'s {thing}, and when?",
                          f"{name} on {month} {day}"))
        _write(folder / f"doc{n:03}", FORMATS[n % len(FORMATS)], f"Notes {n}", paragraphs)
    return asked


def build_chunks_db(path: Path, chunks: int, seed: int = 3) -> None:
    """A database with one collection of ``chunks`` passages (~120 words each), filled in
    bulk through the app's own schema and triggers."""
    ConversationStore(path).close()
    rng = random.Random(seed)
    vocab = FILLER + PLACES + OBJECTS + NAMES + MONTHS
    made_up = sorted({"".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou")
                              for _ in range(rng.randint(2, 4))) for _ in range(6000)})
    vocab = vocab + made_up
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.execute("INSERT INTO doc_collections (id, name, created_at) VALUES (1, 'bench', 0)")
    files = max(chunks // 50, 1)
    db.executemany("INSERT INTO doc_files (id, collection_id, path) VALUES (?, 1, ?)",
                   [(f, f"/bench/file{f}.txt") for f in range(1, files + 1)])
    rows = ((c, 1 + c % files, "c1", c, None, None,
             " ".join(rng.choices(vocab, weights=weights, k=120))) for c in range(chunks))
    db.executemany("INSERT INTO doc_chunks (id, file_id, coll, ordinal, page, heading, text) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _cached_chunks_db(chunks: int) -> Path:
    from llamadesk.core.store import SCHEMA_VERSION

    cache = RESULTS_DIR / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"docs-v{SCHEMA_VERSION}-{chunks}chunks.sqlite3"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        build_chunks_db(partial, chunks)
        partial.rename(path)
    return path


def _hybrid(workdir: Path, quick: bool, model: Path) -> list[Metric]:
    """recall@5 keyword against hybrid with the bundled model standing in as the
    embedding model, and indexing with embeddings against llama.cpp embedding the same
    passages directly. A smaller corpus than the keyword row: the stand-in reads every
    passage at prompt speed."""
    import llama_cpp

    from llamadesk.services.doc_embedder import DocumentEmbedder

    documents, questions = (6, 2) if quick else (36, 12)
    threads = 1 if quick else 2  # quick runs share the machine with other work (the suite)
    corpus = workdir / "docs-hybrid"
    asked = make_corpus(corpus, documents=documents, questions=questions, seed=5)
    store = ConversationStore(workdir / "docs-hybrid.sqlite3")
    embedder = DocumentEmbedder(model, "smollm2-stand-in", n_threads=threads)
    try:
        index = DocumentIndex(store)
        index.add("corpus", [corpus])
        index.set_embedding("corpus", embedder.model_id, embedder.dim)
        started = time.perf_counter()
        report = index.update("corpus", embed=embedder.documents)
        app_s = time.perf_counter() - started
        texts = [str(r[0]) for r in store.connection.execute(
            "SELECT text FROM doc_chunks ORDER BY id")]
        found = {"keyword": 0, "hybrid": 0}
        for question, answer in asked:
            vector = embedder.query(question)
            for kind, query_vector in (("keyword", None), ("hybrid", vector)):
                top = index.search("corpus", question, k=5, query_vector=query_vector)
                found[kind] += any(answer in " ".join(p.text.split()) for p in top)
    finally:
        embedder.close()
        store.close()
    # The reference: llama.cpp alone embedding the same passages in the same batches.
    llm = llama_cpp.Llama(model_path=str(model), embedding=True, n_ctx=1024, n_batch=1024,
                          n_ubatch=1024, n_threads=threads,
                          pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
    try:
        started = time.perf_counter()
        for i in range(0, len(texts), 32):
            llm.embed(texts[i:i + 32], normalize=True)
        ref_s = time.perf_counter() - started
    finally:
        llm.close()
    n = len(texts)
    return [
        Metric("docs_recall_at5_hybrid",
               f"recall@5, hybrid with the bundled model as a stand-in embedder, "
               f"{len(asked)} questions over {documents} documents", "×", Goal(">=", 0.8),
               [found["hybrid"] / len(asked)], informational=True,
               numerator=side("found in the best 5", "questions",
                              [float(found["hybrid"])]),
               reference=side("asked", "questions", [float(len(asked))]),
               details={"keyword_recall_same_corpus": found["keyword"] / len(asked),
                        "chunks": n, "embedded": report.embedded},
               notes="a chat model mean-pooled, not an embedding model: the plumbing, "
                     "not the quality"),
        Metric("docs_index_embed_ratio",
               "indexing with embeddings ÷ llama.cpp embedding the same passages", "×",
               Goal(">=", 0.8), [ref_s / app_s],
               numerator=side("app: parse, chunk, embed, store", "passages/s", [n / app_s]),
               reference=side("llama.cpp embed()", "passages/s", [n / ref_s])),
    ]


def indexing_stall(corpus: Path, workdir: Path, runs: int) -> Metric:
    """The longest gap between 5 ms heartbeats on the GUI thread while the window's
    ``DocumentIndexer`` indexes ``corpus`` on its own thread, its progress row shown."""
    from PySide6.QtCore import QEventLoop, QTimer

    from gui_metrics import Heartbeat
    from harness import qapp
    from llamadesk.services.doc_indexer import DocumentIndexer
    from llamadesk.ui.documents_bar import IndexingRow

    qapp()
    samples: list[float] = []
    idle: list[float] = []
    files = 0
    for run_no in range(runs):
        path = workdir / f"docs-stall-{run_no}.sqlite3"
        path.unlink(missing_ok=True)
        store = ConversationStore(path)
        indexer = DocumentIndexer(store.another_connection)
        row = IndexingRow(indexer)
        try:
            DocumentIndex(store).add("corpus", [corpus])
            beat, loop = Heartbeat(), QEventLoop()
            indexer.idle.connect(loop.quit)
            reports: list[object] = []
            indexer.finished.connect(lambda _name, report, into=reports: into.append(report))
            beat.start()
            started = time.perf_counter()
            indexer.update(["corpus"])
            loop.exec()
            beat.stop()
            samples.append(beat.worst_ms)
            # The same time with nothing to index: what the machine's load alone costs.
            beat.start()
            QTimer.singleShot(int((time.perf_counter() - started) * 1000), loop.quit)
            loop.exec()
            beat.stop()
            idle.append(beat.worst_ms)
            files = len(getattr(reports[0], "added", []))
        finally:
            indexer.shutdown()
            row.deleteLater()
            store.close()
    return Metric("docs_index_gui_stall",
                  f"GUI stall while indexing {files} documents (worst gap)", "ms",
                  Goal("<=", 16), samples,
                  reference=side("the same time, nothing indexed", "ms", idle),
                  notes="DocumentIndexer on its own thread and store connection, the "
                        "window's progress row fed by its signals; 5 ms heartbeat on the "
                        "GUI thread")


def indexing_memory(workdir: Path, quick: bool) -> Metric:
    """The process's resident memory while ``DocumentIndex.update`` (what the indexer's
    thread runs) reads 1,000 PDF pages: 100 files of 10 pages, ~250 words a page."""
    import threading

    import psutil

    files, per_file = (10, 10) if quick else (100, 10)
    folder = workdir / "docs-pages"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(11)
    for n in range(files):
        write_pdf(folder / f"report{n:03}.pdf",
                  ["\n".join(_wrap(_filler(rng, 250))) for _ in range(per_file)])
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss)
    sampler = threading.Thread(target=sample, name="rss-sampler")
    store = ConversationStore(workdir / "docs-pages.sqlite3")
    sampler.start()
    try:
        index = DocumentIndex(store)
        index.add("pages", [folder])
        report = index.update("pages")
    finally:
        done.set()
        sampler.join()
        store.close()
    mib = 1024 * 1024
    return Metric("docs_index_rss", f"resident memory while indexing {report.pages} PDF "
                  "pages (peak)", "MiB", Goal("<=", 1024), [peak[0] / mib],
                  informational=True,
                  details={"before_mib": round(before / mib, 1),
                           "growth_mib": round((peak[0] - before) / mib, 1),
                           "pages": report.pages, "files": len(report.added),
                           "chunks": report.chunks},
                  notes="the whole bench process; each file is parsed, chunked and "
                        "committed before the next, so growth does not follow the page "
                        "count")


def _ms(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000.0


def run(workdir: Path, quick: bool, runs: int) -> list[Metric]:
    """recall@5 (keyword), indexing throughput, retrieval over many chunks."""
    corpus = workdir / "docs-corpus"
    asked = make_corpus(corpus, documents=48 if quick else 240,
                        questions=12 if quick else 36)
    store = ConversationStore(workdir / "docs-bench.sqlite3")
    try:
        index = DocumentIndex(store)
        index.add("corpus", [corpus])
        started = time.perf_counter()
        report = index.update("corpus")
        index_s = time.perf_counter() - started
        hits = 0
        for question, answer in asked:
            top = index.search("corpus", question, k=5)
            hits += any(answer in " ".join(p.text.split()) for p in top)
        recall = hits / len(asked)
        n_chunks = index.get("corpus").chunks
    finally:
        store.close()

    total = 2_000 if quick else 100_000
    path = workdir / "docs-100k.sqlite3"
    shutil.copy2(_cached_chunks_db(total), path)
    big = ConversationStore(path)
    try:
        big_index = DocumentIndex(big)
        queries = ["harbour clock repaired", "weekly budget report", "Tanaka March",
                   "north river market square", "observatory telescope inspected"]
        per_query = {q: repeat(runs, 1, lambda q=q: _ms(lambda: big_index.search(
            "bench", q, k=5))) for q in queries}
        slowest = max(per_query.values(), key=lambda s: sorted(s)[len(s) // 2])
    finally:
        big.close()
    files = len(report.added)
    try:
        from llamadesk.core import bundled

        hybrid = _hybrid(workdir, quick, bundled.locate().path)
    except Exception as exc:  # no model here: say so in the rows
        hybrid = [not_measured("docs_recall_at5_hybrid", "recall@5, hybrid (stand-in "
                               "embedder)", "×", Goal(">=", 0.8), str(exc)),
                  not_measured("docs_index_embed_ratio", "indexing with embeddings ÷ "
                               "llama.cpp embedding", "×", Goal(">=", 0.8), str(exc))]
    stall = indexing_stall(corpus, workdir, runs)
    memory = indexing_memory(workdir, quick)
    return [*hybrid, stall, memory,
        Metric("docs_recall_at5_keyword",
               f"recall@5, keyword (BM25), {len(asked)} questions over {files} documents",
               "×", Goal(">=", 0.8), [recall],
               numerator=side("found in the best 5", "questions", [float(hits)]),
               reference=side("asked", "questions", [float(len(asked))]),
               details={"questions": len(asked), "found": hits, "documents": files,
                        "chunks": n_chunks, "failed_files": len(report.failed)},
               notes="generated corpus: md, txt, html, rst, pdf, docx; one known passage "
                     "per question"),
        Metric("docs_index_files_per_s", f"indexing {files} mixed documents", "files/s",
               Goal(">=", 20), [files / index_s], informational=True,
               details={"seconds": round(index_s, 2), "chunks": n_chunks},
               notes="parse + chunk + FTS5 insert; no embeddings"),
        Metric("docs_retrieval_100k", f"keyword retrieval over {total} chunks (top 5)", "ms",
               Goal("<=", 100), slowest,
               details={"per_query_median_ms": {q: sorted(s)[len(s) // 2]
                                                for q, s in per_query.items()}},
               notes="DocumentIndex.search(): BM25, ORDER BY + LIMIT inside FTS5; the "
                     "slowest of five queries"),
    ]
