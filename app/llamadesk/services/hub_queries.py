"""Hub searches and file listings on a long-lived worker thread of their own.

Separate from the download thread, which is busy for minutes at a time: a search must
answer while a download runs. Every request ends with exactly one of its two signals.
"""

from __future__ import annotations

import itertools
import logging

from PySide6.QtCore import QObject, Signal, Slot

from llamadesk.core.hub import HubClient, HubError, HubErrorKind
from llamadesk.services.worker import WorkerThread

log = logging.getLogger(__name__)

_SEARCH = "search"
_FILES = "files"


class HubQuerySignals(QObject):
    """The Hub query service's signals, declared once: the worker emits them from its
    thread and Qt delivers them queued to receivers on the GUI thread.

    Signals:
        search_finished(int request_id, list[HubRepo] repos)
        search_failed(int request_id, str reason, HubErrorKind kind)
        files_listed(int request_id, str repo, list[GGUFChoice] choices)
        files_failed(int request_id, str repo, str reason, HubErrorKind kind)
    """

    search_finished = Signal(int, object)
    search_failed = Signal(int, str, object)
    files_listed = Signal(int, str, object)
    files_failed = Signal(int, str, str, object)


class _HubWorker(QObject):
    """Lives on the hub-query thread; runs one request at a time."""

    def __init__(self, hub: HubClient, out: HubQuerySignals) -> None:
        super().__init__()
        self._hub = hub
        self._out = out

    @Slot(int, str, str)
    def run(self, request_id: int, op: str, arg: str) -> None:
        """Run one query and emit its result or its failure."""
        try:
            if op == _SEARCH:
                self._out.search_finished.emit(request_id, self._hub.search(arg))
            else:
                self._out.files_listed.emit(request_id, arg, self._hub.gguf_choices(arg))
        except HubError as exc:
            log.warning("hub %s %r failed: %s", op, arg, exc)
            self._fail(request_id, op, arg, str(exc), exc.kind)
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error in hub %s %r", op, arg)
            self._fail(request_id, op, arg, f"Unexpected error: {exc}", HubErrorKind.INTERNAL)

    def _fail(self, request_id: int, op: str, arg: str, reason: str,
              kind: HubErrorKind) -> None:
        if op == _SEARCH:
            self._out.search_failed.emit(request_id, reason, kind)
        else:
            self._out.files_failed.emit(request_id, arg, reason, kind)


class HubQueryService(HubQuerySignals):
    """Search the Hub and list a repo's GGUF files without blocking the GUI; its signals
    are those of ``HubQuerySignals``."""

    _request = Signal(int, str, str)

    def __init__(self, hub: HubClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._worker = _HubWorker(hub, self)
        self._request.connect(self._worker.run)
        self._thread = WorkerThread(self._worker, "hub-queries")

    def search(self, query: str) -> int:
        """Search GGUF repos; returns the request id the answer will carry."""
        request_id = next(self._ids)
        self._request.emit(request_id, _SEARCH, query)
        return request_id

    def list_files(self, repo: str) -> int:
        """List a repo's GGUF models; returns the request id the answer will carry."""
        request_id = next(self._ids)
        self._request.emit(request_id, _FILES, repo)
        return request_id

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Stop the thread (after the request in flight, if any)."""
        self._thread.stop(timeout_ms)
