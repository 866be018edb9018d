"""The window's side of the local API (docs/api.md): Settings → Local API switches it on
and off, the status bar shows "API on :8716" and how many requests are running or
queued, and Settings → Recent API requests lists them. Who may use it (the key for
programs on this computer too, allowed web pages and host names) is set in Preferences
→ Local API and applies to the running server at once.

The API's packages (FastAPI, uvicorn) are imported only when it is first switched on,
so the window starts as fast as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.conversation import Conversation
from llamadesk.core.secrets import ApiKeyStore
from llamadesk.core.settings import AppSettings, LocalApiSettings
from llamadesk.core.store import StoreError
from llamadesk.services.chat_session import store_api_chat
from llamadesk.ui.context import AppContext
from llamadesk.ui.operations import Changes

if TYPE_CHECKING:
    from llamadesk.api.server import ApiServer
    from llamadesk.services.engine_types import GenerationRequest, GenerationResult

log = logging.getLogger(__name__)

#: How often the status bar and the list of requests are brought up to date.
REFRESH_MS = 500
COLUMNS = ("Time", "Client", "Model", "Tokens", "Duration", "Status")


class LocalApi(QObject):
    """Owns the API server while it runs; ``notice`` carries a readable failure,
    ``conversation_kept`` a chat kept from the API (when the user asked for that)."""

    notice = Signal(str)
    running_changed = Signal(bool)
    conversation_kept = Signal(object)
    _chat_ended = Signal(object, object, str)  # from the API's thread, to the GUI thread

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._parent = parent
        self.server: ApiServer | None = None
        self.label = QLabel()
        self.label.setObjectName("localApiStatus")
        self.label.hide()
        self.toggle_action: QAction | None = None
        self.keep_action: QAction | None = None
        self.access_action: QAction | None = None
        #: The API key, shared with Preferences (without a keyring it lasts this session).
        self.keys = ApiKeyStore()
        self._chat_ended.connect(self._keep_chat)
        ctx.settings.changed.connect(self._settings_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    @property
    def available(self) -> bool:
        """Whether the inference service can take jobs from the API's thread."""
        return hasattr(self._ctx.inference, "submit")

    def add_actions(self, menu: QMenu, show_access: Callable[[], None]) -> None:
        """Settings → Local API (a switch), Keep API chats, Local API access… (calls
        ``show_access``) and Recent API requests…"""
        action = QAction("Local &API (OpenAI-compatible, this computer only)", self)
        action.setCheckable(True)
        action.setEnabled(self.available)
        action.toggled.connect(self.set_running)
        self.running_changed.connect(action.setChecked)
        menu.addAction(action)
        self.toggle_action = action
        keep = QAction("&Keep API chats as conversations", self)
        keep.setCheckable(True)
        keep.setChecked(self._ctx.settings.current.local_api.store_conversations)
        keep.setToolTip("Each chat completion the local API answers appears in the sidebar, "
                        "marked as from the API")
        keep.toggled.connect(self.set_keep_chats)
        menu.addAction(keep)
        self.keep_action = keep
        access = QAction("Local API a&ccess…", self)
        access.setToolTip("The key for programs on this computer, and the web pages and "
                          "host names allowed")
        access.triggered.connect(show_access)
        menu.addAction(access)
        self.access_action = access
        recent = QAction("&Recent API requests…", self)
        recent.triggered.connect(self.show_recent)
        menu.addAction(recent)

    def start_if_enabled(self) -> None:
        """At launch: serve again if the user left the API on."""
        if self.available and self._ctx.settings.current.local_api.enabled:
            self.start()

    @Slot(bool)
    def set_running(self, on: bool) -> None:
        """Start or stop the API (at once); the choice holds for the next launch."""
        if on:
            self._save(enabled=self.start())
        else:
            self.stop()
            self._save(enabled=False)

    @Slot(bool)
    def set_keep_chats(self, on: bool) -> None:
        """Keep (or stop keeping) each API chat as a conversation."""
        self._save(store_conversations=on)

    def _save(self, **changes: bool) -> None:
        settings = self._ctx.settings.current
        wanted = replace(settings.local_api, **changes)
        if wanted != settings.local_api:  # a failed save applies to this session anyway
            self._ctx.operations.run(
                lambda: self._ctx.settings.update(replace(settings, local_api=wanted)),
                Changes(settings=True), initiator=self, report=self.notice.emit)

    @Slot(object, object, str)
    def _keep_chat(self, request: GenerationRequest, result: GenerationResult,
                   model_id: str) -> None:
        if not self._ctx.settings.current.local_api.store_conversations:
            return
        try:
            kept: Conversation | None = store_api_chat(self._ctx.store, request, result,
                                                       model_id)
        except StoreError as exc:
            self.notice.emit(f"An API chat was not kept: {exc}")
            return
        if kept is not None:
            self.conversation_kept.emit(kept)

    def start(self, port: int | None = None) -> bool:
        """Serve on 127.0.0.1 (``port`` None: the usual 8716). Returns whether it runs."""
        if self.server is not None and self.server.running:
            return True
        from llamadesk.api import DEFAULT_PORT
        from llamadesk.api.documents import app_store_opener, store_search
        from llamadesk.api.server import ApiConfigError, ApiServer, ApiSettings
        from llamadesk.core.paths import app_paths

        ctx = self._ctx
        wanted = ctx.settings.current.local_api
        server = ApiServer(
            ctx.inference,  # type: ignore[arg-type]  # checked by ``available``
            ctx.registry.models,
            ctx.resolver.api_spec,
            ApiSettings(port=DEFAULT_PORT if port is None else port,
                        api_key=self._key(wanted), allowed_origins=wanted.allowed_origins,
                        allowed_hosts=wanted.allowed_hosts),
            on_chat=self._chat_ended.emit,
            documents=store_search(app_store_opener(app_paths()),
                                   ctx.controller.query_embedder.embed))
        try:
            server.start()
        except ApiConfigError as exc:
            self.notice.emit(f"The local API could not start: {exc}")
            self.running_changed.emit(False)
            return False
        self.server = server
        self._ctx.busy.follow_requests(server.runner)
        self._timer.start()
        self.refresh()
        self.label.show()
        self.running_changed.emit(True)
        return True

    def _key(self, wanted: LocalApiSettings) -> str | None:
        """The key to require (made now when there is none), or None."""
        if not wanted.require_key:
            return None
        key = self.keys.get()
        if key:
            return key
        self.notice.emit("The local API now needs its key: copy it from Settings → "
                         "Local API access….")
        return self.keys.create().value

    @Slot(object)
    def _settings_changed(self, settings: AppSettings) -> None:
        """Apply who may use the API to the running server, at once."""
        server = self.server
        if server is None:
            return
        wanted = settings.local_api
        current = server.settings
        if (current.api_key is not None, current.allowed_origins, current.allowed_hosts) \
                == (wanted.require_key, wanted.allowed_origins, wanted.allowed_hosts):
            return
        from llamadesk.api.server import ApiConfigError

        try:
            server.set_access(self._key(wanted), wanted.allowed_origins,
                              wanted.allowed_hosts)
        except ApiConfigError as exc:
            self.notice.emit(f"The local API's access did not change: {exc}")
        self.refresh()

    def stop(self) -> None:
        """Stop serving: running API replies stop, connections close."""
        server, self.server = self.server, None
        self._ctx.busy.follow_requests(None)
        self._timer.stop()
        self.label.hide()
        if server is not None:
            server.stop()
            self.running_changed.emit(False)

    @Slot()
    def refresh(self) -> None:
        """Bring the status bar's text up to date."""
        server = self.server
        if server is None:
            return
        pending = self._ctx.busy.now().requests
        busy = f" · {pending} running or queued" if pending else ""
        self.label.setText(f"API on :{server.port}{busy}")
        key = " (the key required)" if server.settings.api_key else ""
        self.label.setToolTip(f"Local API at {server.base_url}{key}")

    @Slot()
    def show_recent(self) -> None:
        """The list of recent API requests."""
        RecentRequestsDialog(self, self._parent).exec()


class RecentRequestsDialog(QDialog):
    """Recent API requests, newest first, refreshed while open (no message text)."""

    def __init__(self, api: LocalApi, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recent API requests")
        self.resize(720, 360)
        self._api = api
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.empty = QLabel("The local API is off. Turn it on in Settings → Local API.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        timer = QTimer(self)
        timer.setInterval(REFRESH_MS)
        timer.timeout.connect(self.refresh)
        timer.start()
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Show the records as they are now."""
        server = self._api.server
        self.empty.setVisible(server is None)
        records = list(reversed(server.recent())) if server is not None else []
        self.table.setRowCount(len(records))
        for row, r in enumerate(records):
            tokens = (f"{r.prompt_tokens or 0} + {r.completion_tokens or 0}"
                      if r.completion_tokens is not None else "—")
            cells = (time.strftime("%H:%M:%S", time.localtime(r.started_at)), r.client,
                     r.model, tokens, f"{r.duration_s:.2f} s", r.status)
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
