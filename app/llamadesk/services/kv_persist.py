"""Where a chat's KV state outlives the process: a file beside the chat database, under
the database's marks (core/store_kv.py).

The engine asks ``load`` when a chat it has no state for in memory comes to the model
(the first reply after a launch), and ``save`` once, at quit, for the chat the model
holds, under the epoch its last reply's request carried (``GenerationRequest.kv_epoch``,
read by ``ChatSession.request`` with the history), or ``tidy`` when it holds none. All
of it runs on the inference thread with connections of its own, so nothing here waits
for the window's. A state is only used with the model file and the settings that made
it (``fingerprint``), and within ``MAX_BYTES``: a quit should not write gigabytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llamadesk.core.db import sqlite
from llamadesk.core.kv_state import KVState
from llamadesk.core.store import StoreError
from llamadesk.core.store_kv import (
    KeptHeader,
    erase_kept,
    mark_of,
    read_header,
    read_kept,
    write_kept,
)

if TYPE_CHECKING:
    from llamadesk.core.store import ConversationStore
    from llamadesk.services.engine_types import LoadOptions

log = logging.getLogger(__name__)

#: The largest state written at quit (bytes): ~5,000 tokens of the bundled model's f16
#: cache, ~1,000 of a 7B model with grouped-query attention.
MAX_BYTES = 128 * 1024 * 1024


class SavedStates(Protocol):
    """Chats' KV states kept across launches, by conversation key. An epoch names the
    conversation's content as the model read it (core/store_kv.py)."""

    def load(self, key: str, fingerprint: str, epoch: bytes) -> KVState | None:
        """The state kept for ``key`` by the same model and settings under ``epoch``
        (the one the request read with the chat's history), if any."""

    def save(self, key: str, fingerprint: str, state: KVState, epoch: bytes) -> None:
        """Keep ``state`` for ``key`` if ``epoch`` still stands."""

    def tidy(self) -> None:
        """Erase a kept state whose epoch no longer stands."""


def fingerprint(path: str | Path, options: LoadOptions, build: str) -> str:
    """What a KV state depends on: the model file (path, size, time written), llama.cpp's
    build (``llama_runtime.build_identity``), the cache's layout (types; flash attention
    lays values out otherwise) and the layers on a GPU (computed there, the cells differ
    in their last bits, and a reply must equal a fresh engine's), with the batch size
    there (a GPU's kernels follow the batch's shape). On a CPU threads and batch sizes
    do not change them."""
    stat = Path(path).stat()
    on_gpu = options.n_gpu_layers != 0
    parts = (str(Path(path).resolve()), str(stat.st_size), str(stat.st_mtime_ns), build,
             options.kv_cache_type, str(bool(options.flash_attn)), str(options.n_gpu_layers),
             str(options.n_batch) if on_gpu else "")
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


class StoreStates:
    """``SavedStates`` beside the chat database (core/store_kv.py); keys are
    conversation ids (others, such as the local API's, are never kept). Every call
    opens its own connections on the calling thread and closes them; a failure only
    costs the next launch a re-read."""

    def __init__(self, open_store: Callable[[], ConversationStore]) -> None:
        self._open = open_store

    @contextmanager
    def _store(self) -> Iterator[ConversationStore | None]:
        try:
            store = self._open()
        except StoreError as exc:
            log.warning("the kept KV state is out of reach: %s", exc)
            yield None
            return
        try:
            yield store
        finally:
            store.close()

    def load(self, key: str, fingerprint: str, epoch: bytes) -> KVState | None:
        """The state kept for conversation ``key`` under ``epoch``, or None (the epoch
        came with the request, read with the history: the mark is not read again)."""
        if not key.isdigit():
            return None
        with self._store() as store:
            if store is None:
                return None
            return read_kept(store, KeptHeader(int(key), epoch, fingerprint))

    def save(self, key: str, fingerprint: str, state: KVState, epoch: bytes) -> None:
        """Keep ``state`` for conversation ``key`` if its epoch still stands and it is
        small enough; otherwise leave no stale state behind."""
        if not key.isdigit():
            return
        with self._store() as store:
            if store is None:
                return
            if state.size_bytes > MAX_BYTES or mark_of(store, int(key)) != epoch:
                self._tidy(store)
                return
            try:
                write_kept(store, KeptHeader(int(key), epoch, fingerprint), state)
            except (OSError, sqlite.Error) as exc:
                log.warning("could not keep the KV state: %s", exc)
                return
            log.info("kept the KV state of %d tokens (%.1f MB) for the next launch",
                     len(state.tokens), state.size_bytes / 1e6)

    def tidy(self) -> None:
        """Erase the kept state if its conversation's epoch no longer stands."""
        with self._store() as store:
            if store is not None:
                self._tidy(store)

    @staticmethod
    def _tidy(store: ConversationStore) -> None:
        header = read_header(store)
        try:
            if header is None or header.epoch != mark_of(store, header.conversation_id):
                erase_kept(store)
        except OSError as exc:
            log.warning("could not erase a stale KV state: %s", exc)
