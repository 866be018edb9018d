"""Questions into vectors for hybrid document search, on a thread of its own.

The window's document chat and the local API search a collection indexed with an
embedding model by meaning as well as by keywords: the question is embedded with that
model on this worker's own llama.cpp context (``DocumentEmbedder``: never the chat's
context, never the inference thread), one question at a time, the context kept for the
next question with the same model. The window asks with ``request`` and hears
``query_embedded``; the API's search, already off its event loop, waits with ``embed``.
A model that cannot be found or loaded gives None: the search falls back to keywords.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from llamadesk.core.catalog import EmbeddingEntry, embedding_entry_for
from llamadesk.core.settings import capped_threads
from llamadesk.services.inference import ModelSpec
from llamadesk.services.one_thread import OneThread

log = logging.getLogger(__name__)

#: locate(model id) -> (its file, its catalog entry or None); LookupError when missing.
Locate = Callable[[str], "tuple[Path, EmbeddingEntry | None]"]

#: The context a model is resolved for (the embedder makes its own, services/embedder.py).
RESOLVE_CTX = 512


def resolver_locate(resolve: Callable[[str | None, int], ModelSpec]) -> Locate:
    """``locate`` over the app's model resolver: installed models only (documents are
    embedded on this machine, never by a remote server)."""
    def locate(model_id: str) -> tuple[Path, EmbeddingEntry | None]:
        spec = resolve(model_id, RESOLVE_CTX)
        if spec.connection is not None:
            raise LookupError(f"{model_id} is a remote model; documents are embedded on "
                              "this machine")
        return Path(spec.path), embedding_entry_for(spec.model_id)
    return locate


#: Threads llama.cpp uses to embed one question (a short input: more do not help).
QUERY_THREADS = 2


class QueryEmbedder(QObject):
    """One embedding context at a time, on one thread.

    Signals:
        query_embedded(int, object): the vector (list[float]) for a ``request`` token,
            or None when the question could not be embedded (the reason is logged).
    """

    query_embedded = Signal(int, object)

    def __init__(self, locate: Locate, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._locate = locate
        self._thread = OneThread("llamadesk-query-embed")
        self._embedder: object | None = None  # DocumentEmbedder, imported on first use
        self._model: str | None = None

    def request(self, token: int, model_id: str, text: str) -> None:
        """Embed ``text`` with ``model_id`` (found on the calling thread), then emit
        ``query_embedded(token, vector or None)``."""
        where = self._find(model_id)
        if where is None:
            self.query_embedded.emit(token, None)
            return
        future = self._submit(model_id, where, text)
        future.add_done_callback(lambda done: self.query_embedded.emit(token, done.result()))

    def embed(self, model_id: str, text: str) -> list[float] | None:
        """The vector of ``text`` (waits for the worker; for callers off the GUI thread)."""
        where = self._find(model_id)
        return None if where is None else self._submit(model_id, where, text).result()

    def shutdown(self) -> None:
        """Free the embedding context and stop the thread (after the question in hand)."""
        self._thread.shutdown(self._close)

    def _find(self, model_id: str) -> tuple[Path, EmbeddingEntry | None] | None:
        try:
            return self._locate(model_id)
        except LookupError as exc:
            log.warning("no embedding model for document search: %s", exc)
            return None

    def _submit(self, model_id: str, where: tuple[Path, EmbeddingEntry | None],
                text: str) -> Future[list[float] | None]:
        return self._thread.submit(self._embed, model_id, where, text)

    def _embed(self, model_id: str, where: tuple[Path, EmbeddingEntry | None],
               text: str) -> list[float] | None:
        from llamadesk.services.doc_embedder import DocumentEmbedder
        from llamadesk.services.engine_errors import EngineError

        try:
            if self._model != model_id or not isinstance(self._embedder, DocumentEmbedder):
                self._close()
                path, entry = where
                self._embedder = DocumentEmbedder(path, model_id,
                                                  capped_threads(QUERY_THREADS), entry)
                self._model = model_id
            assert isinstance(self._embedder, DocumentEmbedder)
            return self._embedder.query(text)
        except EngineError as exc:
            log.warning("the question could not be embedded: %s", type(exc).__name__)
            return None

    def _close(self) -> None:
        from llamadesk.services.doc_embedder import DocumentEmbedder

        if isinstance(self._embedder, DocumentEmbedder):
            self._embedder.close()
        self._embedder = None
        self._model = None
