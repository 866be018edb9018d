"""Store-level metrics: open a long conversation, list many conversations, search.

The database is filled once per run in bulk (one transaction, the app's own schema and
FTS triggers), then each query is timed: a warm-up, then several runs.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from common import RESULTS_DIR, Goal, Metric, repeat, side
from llamadesk.core.store import ConversationStore

_WORDS = [
    "the", "model", "answer", "question", "python", "window", "memory", "context", "token",
    "thread", "queue", "paris", "france", "river", "mountain", "garden", "kitchen", "recipe",
    "bread", "butter", "coffee", "morning", "evening", "network", "server", "client",
    "request", "reply", "stream", "buffer", "signal", "event", "timer", "layout", "history",
    "chapter", "letter", "music", "piano", "violin", "orchestra", "theatre", "painting",
    "museum", "science", "physics", "chemistry", "biology", "planet", "galaxy", "rocket",
    "orbit", "engine", "battery", "winter", "summer", "autumn", "spring", "forest", "ocean",
    "island", "harbour", "bridge", "castle", "village", "because", "however", "therefore",
    "although", "whenever", "meanwhile", "nevertheless", "perhaps",
]


@dataclass(frozen=True)
class StoreSizes:
    """How big the benchmark database is."""

    conversations: int
    messages: int
    long_conversation: int


FULL = StoreSizes(conversations=10_000, messages=100_000, long_conversation=2_000)
QUICK = StoreSizes(conversations=200, messages=2_000, long_conversation=100)


def _vocabulary(rng: random.Random, size: int = 4000) -> tuple[list[str], list[float]]:
    # Real words first, then made-up ones; Zipf weights (1/rank), as in natural text,
    # so a search for a common word matches a large share of the messages and a
    # rare one a handful.
    made_up: set[str] = set()
    while len(made_up) < size - len(_WORDS):
        made_up.add("".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou")
                            for _ in range(rng.randint(2, 4))))
    words = [*_WORDS, *sorted(made_up)]
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


def _sentence(rng: random.Random, vocab: tuple[list[str], list[float]]) -> str:
    words = rng.choices(vocab[0], weights=vocab[1], k=rng.randint(8, 60))
    return " ".join(words).capitalize() + "."


def build_database(path: Path, sizes: StoreSizes, seed: int = 5) -> int:
    """Fill a new database at ``path``; return the id of the long conversation."""
    ConversationStore(path).close()  # the app's schema, migrations and triggers
    rng = random.Random(seed)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN")
    vocab = _vocabulary(rng)
    now = time.time() - sizes.conversations * 60
    long_id = sizes.conversations // 2
    rest, extra = divmod(sizes.messages - sizes.long_conversation, sizes.conversations - 1)
    next_id = 1
    for c in range(1, sizes.conversations + 1):
        index = c if c < long_id else c - 1  # 1 .. conversations - 1 for the others
        n = sizes.long_conversation if c == long_id else rest + (1 if index <= extra else 0)
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, params) "
                   "VALUES (?, ?, ?, ?, '{}')", (c, _sentence(rng, vocab)[:40], now, now + c))
        rows = []
        parent = None
        for i in range(n):
            rows.append((next_id, c, parent, "user" if i % 2 == 0 else "assistant",
                         _sentence(rng, vocab), now + c + i))
            parent = next_id
            next_id += 1
        db.executemany("INSERT INTO messages (id, conversation_id, parent_id, role, content, "
                       "created_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (parent, c))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return long_id


def cached_database(sizes: StoreSizes) -> tuple[Path, int]:
    """The benchmark database for ``sizes``, built once into bench/results/cache (it
    takes a minute at full size on a busy 2-core machine) and reused while the schema
    is the same. Returns its path and the id of the long conversation."""
    from llamadesk.core.store import SCHEMA_VERSION

    cache = RESULTS_DIR / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    name = (f"store-v{SCHEMA_VERSION}-{sizes.conversations}c-{sizes.messages}m-"
            f"{sizes.long_conversation}l.sqlite3")
    path = cache / name
    if not path.exists():
        partial = path.with_suffix(".partial")
        for suffix in ("", "-wal", "-shm"):
            Path(str(partial) + suffix).unlink(missing_ok=True)
        build_database(partial, sizes)
        partial.rename(path)
    return path, sizes.conversations // 2


def build_conversations(path: Path, counts: list[int], seed: int = 9) -> list[int]:
    """A small database with one conversation per entry of ``counts`` (that many
    messages each, alternating user and assistant); returns their ids."""
    ConversationStore(path).close()
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    now = time.time() - 3600
    next_id = 1
    ids = []
    for c, n in enumerate(counts, start=1):
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, params) "
                   "VALUES (?, ?, ?, ?, '{}')", (c, f"{n} messages", now, now + c))
        parent = None
        for i in range(n):
            db.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, "
                       "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (next_id, c, parent, "user" if i % 2 == 0 else "assistant",
                        _sentence(rng, vocab), now + c + i))
            parent = next_id
            next_id += 1
        db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?", (parent, c))
        ids.append(c)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return ids


def _rare_word(store: ConversationStore) -> str:
    row = store._db.execute("SELECT content FROM messages ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0]).rstrip(".").split()[-1].lower()


def _timed_ms(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000.0


@dataclass
class _Timings:
    """The three store queries, timed on one open store."""

    total: int
    n_open: int
    opened: list[float]
    n_listed: int
    listed: list[float]
    search: list[float]
    per_query: dict[str, list[float]]
    matches: dict[str, int]
    stress: str


def _measure(store: ConversationStore, long_id: int, runs: int) -> _Timings:
    total = store._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    opened = repeat(runs, 1, lambda: _timed_ms(lambda: store.messages(long_id)))
    n_open = len(store.messages(long_id))
    listed = repeat(runs, 1, lambda: _timed_ms(lambda: store.list_conversations()))
    n_listed = len(store.list_conversations())
    # A common word (in about one message in ten), a pair, a typed-so-far prefix,
    # three words, a rare word: the metric is the slowest of these. A near stop
    # word ("model": in most messages) is reported beside it, not in it.
    queries = ["violin", "coffee garden", "orch", "piano violin theatre", _rare_word(store)]
    stress = "model"
    per_query: dict[str, list[float]] = {}
    for q in queries:
        per_query[q] = repeat(runs, 1, lambda q=q: _timed_ms(lambda: store.search(q)))
    # The metric: the slowest query's median, so no query shape hides behind another.
    search_samples = max(per_query.values(), key=lambda s: sorted(s)[len(s) // 2])
    per_query[stress] = repeat(max(runs // 2, 1), 1,
                               lambda: _timed_ms(lambda: store.search(stress)))
    matches = {q: store._db.execute(
        "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH ?",
        (" ".join(f'"{t}"*' for t in q.split()),)).fetchone()[0] for q in per_query}
    return _Timings(total, n_open, opened, n_listed, listed, search_samples, per_query,
                    matches, stress)


def run(workdir: Path, quick: bool, runs: int) -> list[Metric]:
    """The three store metrics."""
    sizes = QUICK if quick else FULL
    built = time.perf_counter()
    cached, long_id = cached_database(sizes)
    build_s = time.perf_counter() - built
    path = workdir / "store-bench.sqlite3"
    shutil.copy2(cached, path)
    # A fresh connection, as when the app starts; the page cache is warm after the
    # warm-up run, as it is once the app has been open for a moment.
    store = ConversationStore(path)
    try:
        t = _measure(store, long_id, runs)
    finally:
        store.close()
    total, n_open, opened, n_listed, listed = t.total, t.n_open, t.opened, t.n_listed, t.listed
    search_samples, per_query, matches, stress = t.search, t.per_query, t.matches, t.stress
    common = {"database_build_or_cache_s": round(build_s, 2), "messages_in_db": total,
              "conversations_in_db": sizes.conversations}
    return [
        Metric("store_open_conversation", f"open a conversation of {n_open} messages (store)",
               "ms", Goal("<=", 150), opened,
               details={**common, "messages_loaded": n_open},
               notes="ConversationStore.messages(): recursive walk of the branch"),
        Metric("store_list_conversations", f"list {n_listed} conversations (store)", "ms",
               Goal("<=", 200), listed, details={**common, "rows": n_listed},
               notes="ConversationStore.list_conversations() with no limit"),
        Metric("store_search", f"full-text search over {total} messages (store)", "ms",
               Goal("<=", 50), search_samples,
               details={**common, "per_query_median_ms": {
                   q: sorted(s)[len(s) // 2] for q, s in per_query.items()},
                   "per_query_matches": matches, "stress_query_not_in_metric": stress},
               notes="ConversationStore.search(), FTS5 prefix match, 50 best; "
                     "the slowest of several query shapes"),
    ]


def run_encrypted(workdir: Path, quick: bool, runs: int) -> list[Metric]:
    """The same three queries on the encrypted store (SQLCipher, as the app opens it)
    and on the plaintext one, measured in turn in the same run, and the slowdown."""
    from llamadesk.core.db import new_key
    from llamadesk.core.store_migrate import encrypt_in_place

    sizes = QUICK if quick else FULL
    cached, long_id = cached_database(sizes)
    plain_path = workdir / "store-bench-plain.sqlite3"
    enc_path = workdir / "store-bench-encrypted.sqlite3"
    shutil.copy2(cached, plain_path)
    shutil.copy2(cached, enc_path)
    key = new_key()
    encrypt_in_place(enc_path, key)  # the app's own migration of an older database
    timings = {}
    for label, path, k in (("plaintext", plain_path, None), ("encrypted", enc_path, key)):
        store = ConversationStore(path, k)
        try:
            timings[label] = _measure(store, long_id, runs)
        finally:
            store.close()
    enc, plain = timings["encrypted"], timings["plaintext"]
    details = {"messages_in_db": enc.total, "conversations_in_db": sizes.conversations,
               "cipher": "SQLCipher 4 (sqlcipher3), raw 256-bit key"}
    pairs = {"open": (enc.opened, plain.opened), "list": (enc.listed, plain.listed),
             "search": (enc.search, plain.search)}
    ratios = {name: _median(e) / max(_median(p), 1e-6) for name, (e, p) in pairs.items()}
    worst = max(ratios, key=lambda n: ratios[n])
    return [
        Metric("store_encrypted_open_conversation",
               f"open a conversation of {enc.n_open} messages (encrypted store)", "ms",
               Goal("<=", 150), enc.opened, details={**details, "plaintext_ms": plain.opened},
               notes="as store_open_conversation, on the SQLCipher file"),
        Metric("store_encrypted_list_conversations",
               f"list {enc.n_listed} conversations (encrypted store)", "ms", Goal("<=", 200),
               enc.listed, details={**details, "plaintext_ms": plain.listed},
               notes="as store_list_conversations, on the SQLCipher file"),
        Metric("store_encrypted_search",
               f"full-text search over {enc.total} messages (encrypted store)", "ms",
               Goal("<=", 50), enc.search, details={
                   **details, "plaintext_ms": plain.search, "per_query_matches": enc.matches,
                   "per_query_median_ms": {q: _median(v) for q, v in enc.per_query.items()},
                   "plaintext_per_query_median_ms": {
                       q: _median(v) for q, v in plain.per_query.items()}},
               notes="as store_search, on the SQLCipher file"),
        Metric("store_encrypted_slowdown", "encrypted ÷ plaintext store, the worst of "
               "open, list and search", "×", Goal("<=", 1.3),
               [round(ratios[worst], 3)],
               numerator=side(f"encrypted {worst}", "ms", pairs[worst][0]),
               reference=side(f"plaintext {worst}", "ms", pairs[worst][1]),
               details={"ratios": {n: round(r, 3) for n, r in ratios.items()}},
               notes="both measured in the same run, one after the other"),
    ]


def _median(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 2]
