"""The download service: Hub downloads and local imports on one long-lived worker thread.

Its own thread, not the inference thread, so a download never waits behind generation
(nor generation behind a download). Jobs run one at a time in the order queued. Each
run of a job ends with exactly one of ``download_finished``, ``download_paused``,
``download_cancelled`` or ``download_failed``; a paused or failed-but-resumable
download is run again by ``resume``, which continues its partial file.

Both sides hold one ``DownloadQueue`` (``core/download_queue.py``): the service queues,
pauses, resumes and cancels through it; the worker takes the next job from it and says
how each run ended. Pause and cancel are flags the worker checks between chunks, set
through the queue from the GUI thread, since the worker is busy in its download loop
and would only see a queued call once the download is over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from llamadesk.core.download_queue import DownloadQueue, Job, JobState, Stop
from llamadesk.core.downloads import (
    DownloadCancelled,
    Downloader,
    DownloadError,
    DownloadErrorKind,
    DownloadPaused,
    DownloadProgress,
    DownloadRequest,
    PartialDownload,
)
from llamadesk.core.registry import LicenceRequiredError, RegistryError
from llamadesk.services.worker import WorkerThread

log = logging.getLogger(__name__)

IMPORT_PREFIX = "import:"


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


Request = DownloadRequest | ImportRequest


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
        download_failed(str key, str reason, DownloadErrorKind kind): ``INVALID`` also
            for a refused import; ``INTERNAL`` for a fault of LlamaDesk's own.
    """

    download_queued = Signal(str)
    download_started = Signal(str)
    # "qint64", not int: Qt's int is 32 bits and file sizes pass 2 GB. PySide6's stubs only
    # know type objects, hence the ignores.
    download_progressed = Signal(str, "qint64", "qint64", float, float)  # type: ignore[arg-type]
    download_finished = Signal(str, object)
    download_paused = Signal(str, "qint64", "qint64")  # type: ignore[arg-type]
    download_cancelled = Signal(str)
    download_failed = Signal(str, str, object)


class _DownloadWorker(QObject):
    """Lives on the download thread and runs queued jobs one after another."""

    def __init__(self, queue: DownloadQueue[Request], downloader: Downloader,
                 out: DownloadSignals) -> None:
        super().__init__()
        self._queue = queue
        self._downloader = downloader
        self._out = out

    @Slot()
    def run_queue(self) -> None:
        """Run jobs until the queue is empty."""
        while (job := self._queue.take_next()) is not None:
            self._out.download_started.emit(job.key)
            try:
                self._run(job)
            except Exception as exc:  # a bug must not kill the worker thread
                log.exception("unexpected error in job %s", job.key)
                self._queue.mark_done(job)
                self._out.download_failed.emit(job.key, f"Unexpected error: {exc}",
                                               DownloadErrorKind.INTERNAL)

    def _run(self, job: Job[Request]) -> None:
        request, key, out = job.request, job.key, self._out
        if isinstance(request, ImportRequest):
            self._run_import(job, request)
            return
        done_bytes = (0, 0)

        def report(progress: DownloadProgress) -> None:
            nonlocal done_bytes
            done_bytes = (progress.done, progress.total)
            eta = progress.eta if progress.eta is not None else -1.0
            out.download_progressed.emit(key, progress.done, progress.total, progress.speed,
                                         eta)

        try:
            entry = self._downloader.download(request, report, job.control)
        except DownloadPaused:
            self._queue.mark_paused(job)
            out.download_paused.emit(key, *done_bytes)
        except DownloadCancelled:
            self._queue.mark_done(job)
            out.download_cancelled.emit(key)
        except DownloadError as exc:
            log.warning("download %s failed: %s", key, exc)
            if exc.resumable:
                self._queue.mark_paused(job)
            else:
                self._queue.mark_done(job)
            out.download_failed.emit(key, str(exc), exc.kind)
        else:
            self._queue.mark_done(job)
            out.download_finished.emit(key, entry)

    def _run_import(self, job: Job[Request], request: ImportRequest) -> None:
        key, out = job.key, self._out

        def report(done: int, total: int) -> None:
            out.download_progressed.emit(key, done, total, 0.0, -1.0)

        try:
            entry = self._downloader.registry.import_file(
                Path(request.path), link=request.link, name=request.name,
                chat_format=request.chat_format, progress=report)
        except RegistryError as exc:
            log.warning("import of %s failed: %s", request.path, exc)
            self._queue.mark_done(job)
            kind = (DownloadErrorKind.LICENCE if isinstance(exc, LicenceRequiredError)
                    else DownloadErrorKind.INVALID)
            out.download_failed.emit(key, str(exc), kind)
        else:
            self._queue.mark_done(job)
            out.download_finished.emit(key, entry)


class DownloadService(DownloadSignals):
    """Queues downloads and imports and runs them on its own thread; its signals are
    those of ``DownloadSignals``."""

    _wake = Signal()

    def __init__(self, downloader: Downloader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.downloader = downloader
        self._queue: DownloadQueue[Request] = DownloadQueue()
        self._worker = _DownloadWorker(self._queue, downloader, self)
        self._wake.connect(self._worker.run_queue)
        self._thread = WorkerThread(self._worker, "downloads")

    def state(self, key: str) -> JobState | None:
        """The job's state, or None if the service does not know it (finished or never
        queued)."""
        return self._queue.state(key)

    def partials(self) -> list[PartialDownload]:
        """Downloads left part-way by an earlier run of the app, to offer for resuming."""
        return self.downloader.partials()

    def _queued(self, key: str) -> None:
        self.download_queued.emit(key)
        self._wake.emit()

    @Slot(object, result=str)
    def enqueue(self, request: DownloadRequest) -> str:
        """Queue a download; returns its key. Queuing one already queued or running does
        nothing."""
        if self._queue.enqueue(request):
            self._queued(request.key)
        return request.key

    def enqueue_import(self, request: ImportRequest) -> str:
        """Queue an import of a local file; returns its key."""
        if self._queue.enqueue(request, interruptible=False):
            self._queued(request.key)
        return request.key

    @Slot(str)
    def pause(self, key: str) -> None:
        """Pause a queued or running download (its partial file is kept)."""
        if self._queue.pause(key) == Stop.STOPPED:
            self.download_paused.emit(key, 0, 0)

    @Slot(str)
    def resume(self, key: str) -> None:
        """Queue a paused (or resumable failed) download again; it continues its partial
        file."""
        if self._queue.resume(key):
            self._queued(key)

    @Slot(str)
    def cancel(self, key: str) -> None:
        """Cancel a download: stop it if running and delete its partial file."""
        result = self._queue.cancel(key)
        if result.stop != Stop.STOPPED:
            return
        if isinstance(result.request, DownloadRequest):
            self.downloader.discard(result.request)
        self.download_cancelled.emit(key)

    def discard_partial(self, request: DownloadRequest) -> None:
        """Delete a partial file left by an earlier run (one the service never queued)."""
        if self.state(request.key) is None:
            self.downloader.discard(request)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Pause what is running (so it resumes next time), drop the queue, stop the
        thread."""
        self._queue.close()
        self._thread.stop(timeout_ms)
