"""Indexing document collections off the GUI thread, yielding to replies.

``DocumentIndexer`` runs ``DocumentIndex.update`` on a thread of its own, with a store
connection of its own (a connection belongs to one thread; SQLite's WAL lets the chat
write meanwhile, and each file lands in its own transaction). Between files, and between
batches of passages to embed, the worker waits while a reply is being generated
(``hold`` / ``release``, called by the chat controller), so that indexing never slows a
reply down, and checks its cancel flag, so that Cancel leaves every file either indexed
whole or as it was. The thread starts at the first update, not with the window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QMetaObject, QObject, Qt, Signal, Slot

from llamadesk.core.documents.index import (
    CollectionError,
    DocumentIndex,
    Embed,
    UpdateReport,
)
from llamadesk.core.documents.parse_process import ParserProcess
from llamadesk.core.settings import capped_threads
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.query_embedder import Locate
from llamadesk.services.worker import WorkerThread

log = logging.getLogger(__name__)

#: How often a worker waiting for a reply to end looks at its cancel flag (seconds).
WAIT_POLL_S = 0.05

#: Threads llama.cpp uses to embed passages while indexing (the chat keeps the rest).
INDEX_THREADS = 2


@dataclass(frozen=True)
class IndexProgress:
    """Where an update stands: the collection, files done of all, pages read so far,
    the seconds left (None until a file is done), and whether it waits for a reply."""

    collection: str
    files_done: int
    files_total: int
    pages: int
    seconds_left: float | None
    waiting: bool = False


@dataclass
class _Job:
    name: str
    cancel: threading.Event


class _IndexWorker(QObject):
    """Lives on the indexer's thread; runs one collection's update per call."""

    progressed = Signal(object)
    ended = Signal(str, object, str)  # name, UpdateReport | None, "" or why it failed

    def __init__(self, open_store: Callable[[], ConversationStore],
                 may_run: threading.Event, locate: Locate | None) -> None:
        super().__init__()
        self._open_store = open_store
        self._may_run = may_run
        self._locate = locate
        self._store: ConversationStore | None = None

    @Slot(object)
    def run(self, job: _Job) -> None:
        """Update one collection; ends with exactly one ``ended``."""
        report = UpdateReport()
        if job.cancel.is_set():
            report.cancelled = True
            self.ended.emit(job.name, report, "")
            return
        close: Callable[[], None] | None = None
        # Files are parsed in a child process (started with the first file to read), so
        # this thread mostly waits without the GIL and the GUI thread is not held up.
        parser = ParserProcess(cancel=job.cancel)
        try:
            if self._store is None:
                self._store = self._open_store()
            index = DocumentIndex(self._store)
            embed, close = self._embedder(index.get(job.name).embed_model)
            clock = _Clock()
            index.update(job.name, report=report, cancel=job.cancel, parse=parser,
                         progress=lambda done, total, _path: self._turn(
                             job, clock, report, done, total),
                         embed=self._yielding(job, clock, embed) if embed is not None else None)
        except (CollectionError, StoreError, EngineError, OSError) as exc:
            log.warning("indexing a collection failed: %s", type(exc).__name__)
            self.ended.emit(job.name, None, str(exc))
            return
        finally:
            parser.close()
            if close is not None:
                close()
        self.ended.emit(job.name, report, "")

    def _embedder(self, model: str | None
                  ) -> tuple[Embed | None, Callable[[], None] | None]:
        """(embed passages, close) with the collection's model on this thread's own
        context; (None, None) without one (its passages then wait for a vector)."""
        if model is None or self._locate is None:
            return None, None
        try:
            path, entry = self._locate(model)
        except LookupError as exc:
            log.warning("indexing without vectors: %s", exc)
            return None, None
        from llamadesk.services.doc_embedder import DocumentEmbedder

        embedder = DocumentEmbedder(path, model, capped_threads(INDEX_THREADS), entry)
        return embedder.documents, embedder.close

    def _turn(self, job: _Job, clock: _Clock, report: UpdateReport, done: int,
              total: int) -> None:
        """Before each file: say where the update stands, and wait while a reply runs."""
        if not self._may_run.is_set():
            self.progressed.emit(IndexProgress(job.name, done, total, report.pages,
                                               clock.left(done, total), waiting=True))
            self._wait(job, clock)
        self.progressed.emit(IndexProgress(job.name, done, total, report.pages,
                                           clock.left(done, total)))

    def _wait(self, job: _Job, clock: _Clock) -> None:
        paused = time.monotonic()
        while not self._may_run.wait(WAIT_POLL_S):
            if job.cancel.is_set():
                break
        clock.waited += time.monotonic() - paused

    def _yielding(self, job: _Job, clock: _Clock, embed: Embed) -> Embed:
        def yielding(texts: list[str]) -> list[list[float]]:
            if not self._may_run.is_set():
                self._wait(job, clock)
            return embed(texts)
        return yielding

    @Slot()
    def close(self) -> None:
        """Close the worker's store connection (on its own thread)."""
        if self._store is not None:
            self._store.close()
            self._store = None


class _Clock:
    """Time spent indexing (time spent waiting for replies left out), for time left."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.waited = 0.0

    def left(self, done: int, total: int) -> float | None:
        if done <= 0:
            return None
        spent = time.monotonic() - self.started - self.waited
        return max(0.0, spent / done * (total - done))


class DocumentIndexer(QObject):
    """Updates collections on a worker thread, one at a time, in the order asked.

    Signals:
        progressed(IndexProgress): before each file of the update running.
        finished(str, UpdateReport): a collection's update ended (``report.cancelled``
            when Cancel stopped it: what was done before stays).
        failed(str, str): a collection's update could not run (why).
        idle(): nothing is left to index.
    Every update asked for ends with exactly one of ``finished`` or ``failed``.
    """

    progressed = Signal(object)
    finished = Signal(str, object)
    failed = Signal(str, str)
    idle = Signal()
    _run = Signal(object)

    def __init__(self, open_store: Callable[[], ConversationStore],
                 locate: Locate | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open_store = open_store
        self._locate = locate
        self._may_run = threading.Event()
        self._may_run.set()
        self._jobs: list[_Job] = []
        self._thread: WorkerThread | None = None
        self._worker: _IndexWorker | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether an update is queued or running."""
        return bool(self._jobs)

    def update(self, names: list[str]) -> None:
        """Queue an update of each named collection (one already queued is not doubled)."""
        if self._closed:
            return
        queued = {job.name for job in self._jobs if not job.cancel.is_set()}
        for name in names:
            if name in queued:
                continue
            job = _Job(name, threading.Event())
            self._jobs.append(job)
            self._ensure_thread()
            self._run.emit(job)

    def cancel(self) -> None:
        """Stop the update running (between files) and drop the queued ones."""
        for job in self._jobs:
            job.cancel.set()

    def hold(self) -> None:
        """A reply is being generated: wait before the next file or batch."""
        self._may_run.clear()

    def release(self) -> None:
        """No reply is being generated: go on."""
        self._may_run.set()

    def shutdown(self) -> None:
        """Cancel everything, let the worker close its store and stop the thread. What
        the worker still reports is dropped: the window's store may be closed next."""
        self._closed = True
        self.cancel()
        self.release()
        if self._thread is not None and self._worker is not None:
            QMetaObject.invokeMethod(self._worker, "close", Qt.ConnectionType.QueuedConnection)
            self._thread.finish()
        self._thread = None
        self._worker = None
        self._jobs.clear()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        self._worker = _IndexWorker(self._open_store, self._may_run, self._locate)
        self._worker.progressed.connect(self._on_progressed)
        self._worker.ended.connect(self._on_ended)
        self._run.connect(self._worker.run)
        self._thread = WorkerThread(self._worker, "llamadesk-indexer")

    @Slot(object)
    def _on_progressed(self, progress: IndexProgress) -> None:
        if not self._closed:
            self.progressed.emit(progress)

    @Slot(str, object, str)
    def _on_ended(self, name: str, report: UpdateReport | None, reason: str) -> None:
        if self._closed:
            return
        job = next((j for j in self._jobs if j.name == name), None)
        if job is not None:
            self._jobs.remove(job)
        if report is None:
            self.failed.emit(name, reason)
        else:
            self.finished.emit(name, report)
        if not self._jobs:
            self.idle.emit()
