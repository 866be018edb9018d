"""Passages and questions into vectors, with a GGUF embedding model on its own llama.cpp
context (``Embedder``: never the chat's context, so indexing does not disturb a chat's
KV cache). Models trained with task prefixes get them: a catalog embedding model's own
(core/catalog.py, ``EmbeddingEntry``), else by name: nomic-embed-text wants
``search_document:`` / ``search_query:``, the E5 family ``passage:`` / ``query:``, BGE an
instruction before queries only. Any other model (the bundled chat model standing in
for an embedding model in tests) embeds the text as it is.
"""

from __future__ import annotations

from pathlib import Path

from llamadesk.core.catalog import EmbeddingEntry
from llamadesk.services.embedder import Embedder
from llamadesk.services.engine_errors import ContextFullError, EngineError

#: (model id fragment, document prefix, query prefix), first match wins.
PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("nomic-embed", "search_document: ", "search_query: "),
    ("e5", "passage: ", "query: "),
    ("bge", "", "Represent this sentence for searching relevant passages: "),
)
#: Characters of a passage embedded at most (chunks are far shorter; this bounds odd text).
MAX_CHARS = 4000


def prefixes(model_id: str, entry: EmbeddingEntry | None = None) -> tuple[str, str]:
    """The (document, query) prefixes for a model id (the catalog entry's, when given)."""
    if entry is not None:
        return entry.document_prefix, entry.query_prefix
    lowered = model_id.lower()
    for fragment, document, query in PREFIXES:
        if fragment in lowered:
            return document, query
    return "", ""


class DocumentEmbedder:
    """One embedding model for a collection: ``documents()`` when indexing, ``query()``
    when searching. Owns its context; ``close()`` frees it."""

    def __init__(self, path: Path, model_id: str, n_threads: int = 2,
                 entry: EmbeddingEntry | None = None) -> None:
        self.path = path
        self.model_id = model_id
        self.n_threads = n_threads
        self.entry = entry
        self._embedder = Embedder()
        self._document, self._query = prefixes(model_id, entry)
        self._dim: int | None = None

    def _embed(self, texts: list[str]) -> list[list[float]]:
        texts = [t[:MAX_CHARS] for t in texts]
        try:
            found = self._embedder.embed(str(self.path), texts, self.n_threads).vectors
        except ContextFullError:
            # A text too long for the model's window: each alone, that one cut down.
            return [self._one(t) for t in texts]
        return [list(v) for v in found]

    def _one(self, text: str) -> list[float]:
        while True:
            try:
                return list(self._embedder.embed(str(self.path), [text],
                                                 self.n_threads).vectors[0])
            except ContextFullError:
                text = text[:len(text) // 2]

    @property
    def dim(self) -> int:
        """The model's vector length (EngineError when a catalog model's file gives
        another length than its entry says: the wrong file)."""
        if self._dim is None:
            dim = len(self._embed(["dimension"])[0])
            if self.entry is not None and dim != self.entry.dimension:
                raise EngineError(f"{self.path.name} makes vectors of {dim} numbers; "
                                  f"{self.entry.name} makes {self.entry.dimension}")
            self._dim = dim
        return self._dim

    def documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors for passages."""
        return self._embed([self._document + t for t in texts])

    def query(self, text: str) -> list[float]:
        """The vector of a question."""
        return self._embed([self._query + text])[0]

    def close(self) -> None:
        """Free the embedding context."""
        self._embedder.close()
