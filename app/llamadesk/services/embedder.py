"""Embeddings for the local API: a second llama.cpp context on the same model file,
made for embedding (the chat context cannot: llama.cpp fixes that when a context is
created). It lives on the inference worker, beside the chat model, and the weights are
shared through the file's memory map, so it costs the context and its buffers only.

Off the inference worker, every embedding is computed on a thread that ends with it
(``_on_passing_thread``): llama.cpp's OpenMP build keeps a pool of worker threads for
each thread that computes with more than one, for as long as that thread lives, and
while a process holds more of them than there are cores libgomp stops spinning at its
barriers for every pool, the chat's too (docs/performance.md, "Decode (round 7)"). The
inference worker's embeddings run on its own thread, whose pool is the chat's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import llama_cpp

from llamadesk.core.gguf_validate import GGUFValidationError, validate_gguf
from llamadesk.services import llama_internals as internals
from llamadesk.services.engine_errors import ContextFullError, EngineError
from llamadesk.services.engine_types import Embeddings as Embeddings  # named here too

log = logging.getLogger(__name__)

#: The longest input one embedding takes, in tokens (one batch: it is read in one go).
EMBED_CTX = 1024

T = TypeVar("T")


def _on_passing_thread(work: Callable[[], T]) -> T:
    """``work()`` on a new thread, waited for; its result or its exception. The OpenMP
    workers llama.cpp starts for that thread end with it: left to a long-lived caller
    (the question embedder's or the indexer's thread), they would make the chat's two
    decode threads sleep and wake at each of a token's barriers (~940 times a token)
    from the first question on. A thread costs ~0.1 ms; an embedding, milliseconds."""
    out: list[T] = []
    error: list[BaseException] = []
    ended = threading.Event()

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # handed to the caller below
            error.append(exc)
        finally:
            ended.set()

    thread = threading.Thread(target=run, name="llamadesk-embed")
    thread.start()
    # Ctrl-C in the CLI: llama.cpp's call must end before the caller's clean-up frees
    # the context under it (a segfault). Waited on an event: a join interrupted by a
    # signal marks a running thread as ended (CPython 3.11).
    interrupted: BaseException | None = None
    while not ended.is_set():
        try:
            ended.wait()
        except BaseException as exc:
            interrupted = interrupted or exc
    thread.join()
    if interrupted is not None:
        raise interrupted
    if error:
        raise error[0]
    return out[0]


class Embedder:
    """Holds at most one embedding context, for the model last asked for, used by one
    thread at a time (the inference worker's, the indexer's or the question embedder's).
    ``on_passing_thread`` False: computed on the calling thread (the inference worker)."""

    def __init__(self, on_passing_thread: bool = True) -> None:
        self._path: str | None = None
        self._llm: llama_cpp.Llama | None = None
        self._passing = on_passing_thread

    def embed(self, path: str, texts: list[str], n_threads: int) -> Embeddings:
        """Embed ``texts`` with the model at ``path``. Raises ContextFullError for an
        input over EMBED_CTX tokens, EngineError when the model cannot embed."""
        llm = self._context(path, n_threads)
        for index, text in enumerate(texts):
            n = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
            if n == 0:
                # llama.cpp refuses an empty batch, and after that refusal freeing the
                # context's batch aborts the process (double free): never ask it.
                raise EngineError(f"input[{index}] holds no text to embed.")
            if n > EMBED_CTX:
                raise ContextFullError(f"input[{index}] takes {n} tokens; an embedding "
                                       f"reads at most {EMBED_CTX}.", n, EMBED_CTX)
        try:
            def work() -> Any:  # (vectors, token count)
                return llm.embed(texts, normalize=True, return_count=True)

            vectors, count = _on_passing_thread(work) if self._passing else work()
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
                n_batch=EMBED_CTX, n_ubatch=EMBED_CTX, n_threads=n_threads,
                # an embedding is one batch: without this, llama-cpp-python reads it
                # with a thread per core, not the ``n_threads`` asked for
                n_threads_batch=n_threads, pooling_type=pooling,
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
