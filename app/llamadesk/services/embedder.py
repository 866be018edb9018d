"""Embeddings for the local API: a second llama.cpp context on the same model file,
made for embedding (the chat context cannot: llama.cpp fixes that when a context is
created). It lives on the inference worker, beside the chat model, and the weights are
shared through the file's memory map, so it costs the context and its buffers only.
"""

from __future__ import annotations

import logging

import llama_cpp

from llamadesk.core.gguf_validate import GGUFValidationError, validate_gguf
from llamadesk.services import llama_internals as internals
from llamadesk.services.engine_errors import ContextFullError, EngineError
from llamadesk.services.engine_types import Embeddings as Embeddings  # named here too

log = logging.getLogger(__name__)

#: The longest input one embedding takes, in tokens (one batch: it is read in one go).
EMBED_CTX = 1024


class Embedder:
    """Holds at most one embedding context, for the model last asked for. Only the
    inference worker's thread uses it."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._llm: llama_cpp.Llama | None = None

    def embed(self, path: str, texts: list[str], n_threads: int) -> Embeddings:
        """Embed ``texts`` with the model at ``path``. Raises ContextFullError for an
        input over EMBED_CTX tokens, EngineError when the model cannot embed."""
        llm = self._context(path, n_threads)
        for index, text in enumerate(texts):
            n = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if n > EMBED_CTX:
                raise ContextFullError(f"input[{index}] takes {n} tokens; an embedding "
                                       f"reads at most {EMBED_CTX}.", n, EMBED_CTX)
        try:
            vectors, count = llm.embed(texts, normalize=True, return_count=True)
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"llama.cpp could not embed the input: {exc}") from exc
        return Embeddings(tuple(tuple(float(x) for x in v) for v in vectors), int(count))

    def _context(self, path: str, n_threads: int) -> llama_cpp.Llama:
        if self._llm is not None and self._path == path:
            return self._llm
        self.close()
        try:
            own_pooling = any(k.endswith(".pooling_type") for k in validate_gguf(path).metadata)
        except (GGUFValidationError, OSError) as exc:
            raise EngineError(f"The model file cannot be read: {exc}") from exc
        # A model made for embeddings says how to pool; a chat model is averaged.
        pooling = (llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED if own_pooling
                   else llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        try:
            self._llm = internals.new_llama(
                adopt_early=False, model_path=path, embedding=True, n_ctx=EMBED_CTX,
                n_batch=EMBED_CTX, n_ubatch=EMBED_CTX, n_threads=n_threads, pooling_type=pooling,
                verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"The model could not be loaded for embeddings: {exc}") from exc
        self._path = path
        log.info("embedding context ready for %s", path)
        return self._llm

    def close(self) -> None:
        """Free the embedding context (llama.cpp memory is released now)."""
        if self._llm is not None:
            self._llm.close()
        self._llm = None
        self._path = None
