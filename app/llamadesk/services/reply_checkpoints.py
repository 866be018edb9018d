"""Reply checkpoints, committed off the GUI thread.

While a reply streams, its text so far is saved every ``CHECKPOINT_INTERVAL_S`` into
``app_state`` (``draft:<job>``), so a crash, a kill or a power cut keeps all but the last
~2 s of it. Each save is a commit with an fsync (``synchronous=FULL``, 5-10 ms), which
on the GUI thread was the longest block while text arrived; here it runs on one writer
thread with its own connection. The GUI thread only hands the text over.

Saves of one reply are coalesced (only the newest text waiting is written). When the
reply ends, ``end(key)`` is called before the GUI thread's own transaction that stores
the reply and deletes the checkpoint: a save that has not begun by then is dropped, and
one that has holds SQLite's write lock, so the GUI's transaction comes after it and
deletes what it wrote. A stored reply therefore never leaves a checkpoint behind.

The same thread and connection also run other short store jobs off the GUI thread
(``call``): reading a chat's whole branch ahead of its first send (``BranchReader.offer``);
and the thread syncs the user's question to the disk after the GUI thread committed it
without waiting for the disk (``sync``, core/store_sync.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.core.store_sync import sync_log
from llamadesk.services.one_thread import OneThread

log = logging.getLogger(__name__)

_UPSERT = ("INSERT INTO app_state (key, value) VALUES (?, ?) "
           "ON CONFLICT(key) DO UPDATE SET value = excluded.value")


class ReplyCheckpoints:
    """Writes checkpoints on the ``llamadesk-checkpoints`` thread, in order, with a
    connection it opens there (``open_store``) on the first save."""

    def __init__(self, open_store: Callable[[], ConversationStore]) -> None:
        self._open_store = open_store
        self._lock = threading.Lock()
        self._waiting: dict[str, str] = {}  # key -> newest text not yet written
        self._live: set[str] = set()  # keys saved and not ended: may still be written
        self._scheduled = False
        #: One thread: jobs run in the order made (services/one_thread.py).
        self._thread = OneThread("llamadesk-checkpoints")
        self._store: ConversationStore | None = None  # the writer thread's
        self._stopped = False  # after shutdown: no more jobs (the store may be closing)

    def save(self, key: str, value: str) -> None:
        """Write ``value`` under ``key`` soon (returns at once)."""
        with self._lock:
            self._waiting[key] = value
            self._live.add(key)
            if self._scheduled:
                return
            self._scheduled = True
            self._thread.submit(self._write_waiting)

    def call(self, job: Callable[[ConversationStore], object]) -> None:
        """Run ``job`` with this thread's connection, after what is queued (returns at
        once). A StoreError it raises is logged and dropped: jobs only prepare work the
        GUI thread can still do itself; after ``shutdown`` it is dropped."""
        with self._lock:
            if not self._stopped:
                self._thread.submit(self._run, job)

    def sync(self, database: Path, done: Callable[[str | None], None]) -> None:
        """Sync the write-ahead log of ``database`` to the disk after what is queued,
        then call ``done(None)``, or ``done(reason)`` when the disk refused, on the
        writer thread. After ``shutdown`` both run here, at once: whatever waits on the
        sync is never told before it happened."""
        with self._lock:
            if not self._stopped:
                self._thread.submit(self._sync, database, done)
                return
        self._sync(database, done)

    def end(self, key: str) -> None:
        """The reply under ``key`` ended: nothing more is written for it. Call before
        the transaction that deletes its checkpoint."""
        with self._lock:
            self._live.discard(key)
            self._waiting.pop(key, None)

    @property
    def closed(self) -> bool:
        """Whether ``shutdown`` was called (the store may be closing)."""
        return self._stopped

    def shutdown(self) -> None:
        """Write what is waiting, close the writer's connection and stop its thread."""
        with self._lock:
            self._stopped = True
        self._thread.shutdown(self._close)

    # -- on the writer thread -------------------------------------------------------------
    def _connection(self) -> ConversationStore:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def _run(self, job: Callable[[ConversationStore], object]) -> None:
        try:
            job(self._connection())
        except StoreError as exc:
            log.warning("a store job on the writer thread failed: %s", type(exc).__name__)
        except Exception:  # a bug: say so, and keep the thread for the checkpoints
            log.exception("a store job on the writer thread failed")

    @staticmethod
    def _sync(database: Path, done: Callable[[str | None], None]) -> None:
        reason = None
        try:
            sync_log(database)
        except OSError as exc:
            log.warning("could not sync the chat database to the disk: %s", exc.strerror)
            reason = (f"The disk holding the chat database ({database}) did not confirm "
                      f"the message was written ({exc.strerror or exc}); it is in the chat, "
                      "but a power cut now could lose it. Check the disk.")
        try:
            done(reason)
        except RuntimeError:  # its receiver is gone (the window closed): nothing to tell
            log.debug("a sync finished after its receiver was deleted")

    def _write_waiting(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._scheduled = False
                    return
                key, value = self._waiting.popitem()
            try:
                self._write(key, value)
            except StoreError as exc:  # the reply goes on; only this checkpoint is missing
                log.warning("could not checkpoint the reply: %s", exc)
            except Exception:  # a bug: say so, and keep the thread for the next save
                log.exception("writing a reply checkpoint failed")

    def _write(self, key: str, value: str) -> None:
        # BEGIN IMMEDIATE takes the write lock before the check: a reply ended before it
        # is not written; one that ends during it is deleted after it (see the module).
        with self._connection().transaction() as db:
            with self._lock:
                live = key in self._live
            if live:
                db.execute(_UPSERT, (key, value))

    def _close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
