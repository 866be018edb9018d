"""The models of the remote connections, asked for on a worker thread of their own.

The window never waits on the network: ``check()`` queues a ``GET /models`` to the
worker, and ``checked`` reports what it found. Only enabled connections the user added
are asked; a connection turned off or removed is forgotten at once.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.secrets import SecretStore
from llamadesk.core.settings import AppSettings
from llamadesk.services.worker import WorkerThread

log = logging.getLogger(__name__)


class _CheckWorker(QObject):
    """Lives on the ``remote-models`` thread."""

    done = Signal(str, object)  # name, CheckResult

    def __init__(self, secrets: SecretStore) -> None:
        super().__init__()
        self._secrets = secrets

    @Slot(object, object)
    def check(self, connection: Connection, settings: RemoteSettings) -> None:
        from llamadesk.services.remote import CheckResult, CheckStatus, check_connection

        try:
            result = check_connection(connection, self._secrets.api_key(connection.name),
                                      settings)
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error checking %s", connection.name)
            result = CheckResult(CheckStatus.NOT_COMPATIBLE, f"Unexpected error: {exc}")
        self.done.emit(connection.name, result)


class RemoteModelsService(QObject):
    """Knows the models of each enabled connection, as of its last check.

    Signals:
        checked(str, CheckResult): a connection was checked (its name, what was found).
        changed(): the set of remote models changed.
    """

    checked = Signal(str, object)
    changed = Signal()
    _request = Signal(object, object)

    def __init__(self, secrets: SecretStore | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.secrets = secrets or SecretStore()
        self._models: dict[str, tuple[str, ...]] = {}
        self._connections: tuple[Connection, ...] = ()
        # Started by the first check: without connections there is no thread at all.
        self._thread: WorkerThread | None = None

    def models(self) -> dict[str, tuple[str, ...]]:
        """For each enabled connection checked so far, the server's model ids."""
        enabled = {c.name for c in self._connections if c.enabled}
        return {name: ids for name, ids in self._models.items() if name in enabled}

    def follow(self, settings: AppSettings) -> None:
        """Use the connections of ``settings``: forget those gone or off, ask the new."""
        before = self._connections
        self._connections = settings.connections
        known = {c.name: c for c in before}
        dropped = [n for n in self._models if not any(
            c.name == n and c.enabled for c in settings.connections)]
        for name in dropped:
            del self._models[name]
        for connection in settings.connections:
            if connection.enabled and known.get(connection.name) != connection:
                self.check(connection, settings.remote)
        if dropped:
            self.changed.emit()

    def check(self, connection: Connection, settings: RemoteSettings | None = None) -> None:
        """Ask ``connection`` for its models; ``checked`` tells the outcome."""
        if self._thread is None:
            worker = _CheckWorker(self.secrets)
            self._request.connect(worker.check)
            worker.done.connect(self._on_done)
            self._thread = WorkerThread(worker, "remote-models")
        self._request.emit(connection, settings or RemoteSettings())

    @Slot(str, object)
    def _on_done(self, name: str, result: object) -> None:
        models = getattr(result, "models", ())
        ok = bool(getattr(result, "ok", False))
        still_on = any(c.name == name and c.enabled for c in self._connections)
        if ok and still_on and self._models.get(name) != models:
            self._models[name] = tuple(models)
            self.changed.emit()
        self.checked.emit(name, result)

    def shutdown(self) -> None:
        """Stop the worker thread, if it ever started (a check in progress ends at its
        timeout). Safe to call more than once."""
        if self._thread is not None:
            self._thread.stop()
