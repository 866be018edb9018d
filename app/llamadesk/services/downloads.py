"""The download service: Hub downloads and local imports on one long-lived worker thread.

Its own thread, not the inference thread, so a download never waits behind generation
(nor generation behind a download). Jobs run one at a time in the order queued. Each
run of a job ends with exactly one of ``download_finished``, ``download_paused``,
``download_cancelled`` or ``download_failed``; a paused or failed-but-resumable
download is run again by ``resume``, which continues its partial file.

Pause and cancel are flags the worker checks between chunks; they are set directly from
the GUI thread, since the worker is busy in its download loop and would only see a
queued call once the download is over.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from llamadesk.core.downloads import (
    DownloadCancelled,
    DownloadControl,
    Downloader,
    DownloadError,
    DownloadPaused,
    DownloadProgress,
    DownloadRequest,
    PartialDownload,
)
from llamadesk.core.registry import RegistryError
from llamadesk.services.worker import WorkerThread

log = logging.getLogger(__name__)

IMPORT_PREFIX = "import:"


class JobState(StrEnum):
    """Where a job stands, as the service sees it."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


@dataclass(frozen=True)
class ImportRequest:
    """A local GGUF file to validate and register (copied, or linked in place)."""

    path: str
    link: bool = False
    name: str | None = None
    chat_format: str | None = None

    @property
    def key(self) -> str:
        """The job's id."""
        return f"{IMPORT_PREFIX}{self.path}"


@dataclass
class _Job:
    request: DownloadRequest | ImportRequest
    control: DownloadControl = field(default_factory=DownloadControl)
    state: JobState = JobState.QUEUED


class DownloadSignals(QObject):
    """The download service's signals, declared once: the worker emits them from its
    thread and Qt delivers them queued to receivers on the GUI thread.

    Signals:
        download_queued(str key): a job joined the queue.
        download_started(str key): the worker began (or resumed) it.
        download_progressed(str key, int done, int total, float speed, float eta):
            at most about four times a second; speed in bytes/s, eta in seconds
            (-1: unknown). Imports report speed 0.
        download_finished(str key, ModelEntry entry): verified and registered.
        download_paused(str key, int done, int total): stopped; ``resume`` continues it.
        download_cancelled(str key): stopped and its partial file deleted.
        download_failed(str key, str reason, str kind): ``kind`` is a
            ``DownloadErrorKind`` value ("gated", "licence", "checksum", "network", …),
            "invalid" for a refused import, or "internal".
    """

    download_queued = Signal(str)
    download_started = Signal(str)
    # "qint64", not int: Qt's int is 32 bits and file sizes pass 2 GB. PySide6's stubs only
    # know type objects, hence the ignores.
    download_progressed = Signal(str, "qint64", "qint64", float, float)  # type: ignore[arg-type]
    download_finished = Signal(str, object)
    download_paused = Signal(str, "qint64", "qint64")  # type: ignore[arg-type]
    download_cancelled = Signal(str)
    download_failed = Signal(str, str, str)


class _DownloadWorker(QObject):
    """Lives on the download thread and runs queued jobs one after another."""

    def __init__(self, service: DownloadService) -> None:
        super().__init__()
        self._service = service
        self._out: DownloadSignals = service

    @Slot()
    def run_queue(self) -> None:
        """Run jobs until the queue is empty."""
        while (item := self._service._take_next()) is not None:
            key, job = item
            self._out.download_started.emit(key)
            try:
                self._run(key, job)
            except Exception as exc:  # a bug must not kill the worker thread
                log.exception("unexpected error in job %s", key)
                self._service._set_state(key, JobState.DONE)
                self._out.download_failed.emit(key, f"Unexpected error: {exc}", "internal")

    def _run(self, key: str, job: _Job) -> None:
        request = job.request
        if isinstance(request, ImportRequest):
            self._run_import(key, request)
            return

        def report(progress: DownloadProgress) -> None:
            eta = progress.eta if progress.eta is not None else -1.0
            self._out.download_progressed.emit(key, progress.done, progress.total,
                                               progress.speed, eta)

        done_bytes = (0, 0)

        def remember(progress: DownloadProgress) -> None:
            nonlocal done_bytes
            done_bytes = (progress.done, progress.total)
            report(progress)

        try:
            entry = self._service.downloader.download(request, remember, job.control)
        except DownloadPaused:
            self._service._set_state(key, JobState.PAUSED)
            self._out.download_paused.emit(key, *done_bytes)
        except DownloadCancelled:
            self._service._set_state(key, JobState.DONE)
            self._out.download_cancelled.emit(key)
        except DownloadError as exc:
            log.warning("download %s failed: %s", key, exc)
            self._service._set_state(key, JobState.PAUSED if exc.resumable else JobState.DONE)
            self._out.download_failed.emit(key, str(exc), str(exc.kind))
        else:
            self._service._set_state(key, JobState.DONE)
            self._out.download_finished.emit(key, entry)

    def _run_import(self, key: str, request: ImportRequest) -> None:
        def report(done: int, total: int) -> None:
            self._out.download_progressed.emit(key, done, total, 0.0, -1.0)

        try:
            entry = self._service.downloader.registry.import_file(
                Path(request.path), link=request.link, name=request.name,
                chat_format=request.chat_format, progress=report)
        except RegistryError as exc:
            log.warning("import of %s failed: %s", request.path, exc)
            self._service._set_state(key, JobState.DONE)
            self._out.download_failed.emit(key, str(exc), "invalid")
        else:
            self._service._set_state(key, JobState.DONE)
            self._out.download_finished.emit(key, entry)


class DownloadService(DownloadSignals):
    """Queues downloads and imports and runs them on its own thread; its signals are
    those of ``DownloadSignals``."""

    _wake = Signal()

    def __init__(self, downloader: Downloader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.downloader = downloader
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._queue: deque[str] = deque()
        self._closing = False
        self._worker = _DownloadWorker(self)
        self._wake.connect(self._worker.run_queue)
        self._thread = WorkerThread(self._worker, "downloads")

    # -- called by the worker -------------------------------------------------------------
    def _take_next(self) -> tuple[str, _Job] | None:
        with self._lock:
            while self._queue and not self._closing:
                key = self._queue.popleft()
                job = self._jobs.get(key)
                if job is not None and job.state == JobState.QUEUED:
                    job.state = JobState.RUNNING
                    return key, job
            return None

    def _set_state(self, key: str, state: JobState) -> None:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                job.state = state
                if state == JobState.DONE:
                    del self._jobs[key]

    # -- the API --------------------------------------------------------------------------
    def state(self, key: str) -> JobState | None:
        """The job's state, or None if the service does not know it (finished or never
        queued)."""
        with self._lock:
            job = self._jobs.get(key)
            return job.state if job else None

    def partials(self) -> list[PartialDownload]:
        """Downloads left part-way by an earlier run of the app, to offer for resuming."""
        return self.downloader.partials()

    def _enqueue(self, request: DownloadRequest | ImportRequest) -> str:
        key = request.key
        with self._lock:
            if self._closing:
                raise RuntimeError("the download service is shutting down")
            job = self._jobs.get(key)
            if job is not None and job.state in (JobState.QUEUED, JobState.RUNNING):
                return key  # already on its way
            self._jobs[key] = _Job(request)
            self._queue.append(key)
        self.download_queued.emit(key)
        self._wake.emit()
        return key

    @Slot(object, result=str)
    def enqueue(self, request: DownloadRequest) -> str:
        """Queue a download; returns its key. Queuing one already queued or running does
        nothing."""
        return self._enqueue(request)

    def enqueue_import(self, request: ImportRequest) -> str:
        """Queue an import of a local file; returns its key."""
        return self._enqueue(request)

    @Slot(str)
    def pause(self, key: str) -> None:
        """Pause a queued or running download (its partial file is kept)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or isinstance(job.request, ImportRequest):
                return
            if job.state == JobState.RUNNING:
                job.control.pause()
                return
            if job.state != JobState.QUEUED:
                return
            job.state = JobState.PAUSED
            self._queue.remove(key)
        self.download_paused.emit(key, 0, 0)

    @Slot(str)
    def resume(self, key: str) -> None:
        """Queue a paused (or resumable failed) download again; it continues its partial
        file."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.state != JobState.PAUSED:
                return
            request = job.request
            del self._jobs[key]
        self._enqueue(request)

    @Slot(str)
    def cancel(self, key: str) -> None:
        """Cancel a download: stop it if running and delete its partial file."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                return
            if job.state == JobState.RUNNING:
                if not isinstance(job.request, ImportRequest):
                    job.control.cancel()
                return
            if key in self._queue:
                self._queue.remove(key)
            del self._jobs[key]
            request = job.request
        if isinstance(request, DownloadRequest):
            self.downloader.discard(request)
        self.download_cancelled.emit(key)

    def discard_partial(self, request: DownloadRequest) -> None:
        """Delete a partial file left by an earlier run (one the service never queued)."""
        if self.state(request.key) is None:
            self.downloader.discard(request)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Pause what is running (so it resumes next time), drop the queue, stop the
        thread."""
        with self._lock:
            self._closing = True
            self._queue.clear()
            for job in self._jobs.values():
                if job.state == JobState.RUNNING:
                    job.control.pause()
        self._thread.stop(timeout_ms)
