"""The main window: conversations on the left, the chat in the middle, its settings on
the right. It is made of parts (``ConversationSidebar``, ``ChatPane`` with its
``ModelPicker``, ``AppStatusBar``, ``ChatTransfer``, ``ThemeManager``; the menus in
``window_menus.py``) and keeps what spans them: the splitter, restoring the last chat
and the window's size, and closing without losing a reply."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QTimer, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QSplitter

from llamadesk import APP_NAME
from llamadesk.core.catalog import CatalogError
from llamadesk.core.conversation import Conversation, Message, SamplingParams
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import LAST_CONVERSATION_KEY
from llamadesk.services import engine_import
from llamadesk.services.jobs import ModelState
from llamadesk.ui.chat_pane import ChatPane
from llamadesk.ui.context import AppContext
from llamadesk.ui.local_api import LocalApi
from llamadesk.ui.operations import Changes, chat_changed, messages_changed
from llamadesk.ui.shutdown import Shutdown
from llamadesk.ui.sidebar import ConversationSidebar
from llamadesk.ui.status_bar import AppStatusBar
from llamadesk.ui.theme import ThemeManager
from llamadesk.ui.transfer import ChatTransfer, dropped_paths
from llamadesk.ui.window_menus import build_menus

if TYPE_CHECKING:
    from llamadesk.ui.model_manager_window import ModelManagerWindow

__all__ = ["AppContext", "MainWindow"]

log = logging.getLogger(__name__)

GEOMETRY_KEY = "window_geometry"
NOTICE_MS = 4000


class MainWindow(QMainWindow):
    """The LlamaDesk window.

    Parts: ``sidebar`` (ConversationSidebar), ``chat`` (ChatPane, whose settings panel
    sits on the right), ``status`` (AppStatusBar), ``transfer`` (ChatTransfer: export,
    import, drops), ``theme`` (ThemeManager)."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.store = ctx.store
        self.controller = ctx.controller
        self.inference = ctx.inference
        self.models_window: ModelManagerWindow | None = None
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 760)

        self.ops = ctx.operations
        self.sidebar = ConversationSidebar(ctx.store, ctx.operations)
        self.chat = ChatPane(ctx)
        splitter = QSplitter()
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.chat)
        splitter.addWidget(self.chat.settings_panel)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([250, 900, 280])
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)
        self.status = AppStatusBar()
        self.setStatusBar(self.status)
        self.transfer = ChatTransfer(ctx, self)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        self.theme = ThemeManager(app, ctx.settings, self, ctx.operations)
        self.setAcceptDrops(True)

        self.local_api = LocalApi(ctx, self)
        self.status.addPermanentWidget(self.local_api.label)
        # After the chat pane (its slots store a stopped reply before a close goes on).
        self.shutdown = Shutdown(ctx, self._keep_on_screen, self.close, self._stop_services,
                                 self)
        self.menu_actions = build_menus(self)
        self.stop_action = self.menu_actions.stop
        self._connect_parts()
        self.theme.apply()
        self._sync_appearance(ctx.settings.current)
        self.refresh_models()
        self.status.show_state(self.inference.state)
        self._restore()
        self.local_api.start_if_enabled()

    # -- set-up -------------------------------------------------------------------------------
    def _connect_parts(self) -> None:
        side, chat, status = self.sidebar, self.chat, self.status
        side.conversation_selected.connect(self.open_conversation)
        side.new_chat_requested.connect(self.new_conversation)
        side.delete_requested.connect(self.delete_current)
        side.search_hit_opened.connect(self.open_message)
        side.problem.connect(chat.banner.show_message)
        chat.new_chat_needed.connect(self.new_conversation)
        chat.notice.connect(self.show_notice)
        self.local_api.notice.connect(chat.banner.show_message)
        self.local_api.conversation_kept.connect(self._on_chat_kept)
        self.ops.failed.connect(self.report_problem)
        chat.models_requested.connect(self.show_models)
        chat.busy_changed.connect(self.stop_action.setEnabled)
        c, inf = self.controller, self.inference
        # The controller's writes (a reply, a title) reach the views as change events too.
        c.conversation_changed.connect(self._on_controller_chat_changed)
        c.message_added.connect(self._on_message_added)
        c.reply_finished.connect(status.show_reply_speed)
        inf.state_changed.connect(status.show_state)
        inf.generation_started.connect(self._on_job_started)
        inf.generation_ended.connect(self._on_job_ended)
        inf.model_loaded.connect(status.show_model)
        inf.model_load_failed.connect(status.show_no_model)
        self.transfer.imported.connect(self._on_imported)
        self.transfer.problem.connect(chat.banner.show_message)
        self.transfer.notice.connect(self.show_notice)
        self.theme.chat_font_changed.connect(chat.set_chat_font)
        self.theme.problem.connect(chat.banner.show_message)
        self.ctx.settings.changed.connect(self._sync_appearance)

    def _restore(self) -> None:
        geometry = self.store.get_state(GEOMETRY_KEY)
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii")))
        last = self.store.get_state(LAST_CONVERSATION_KEY)
        target = self.store.get_conversation(int(last)) if last and last.isdigit() else None
        if target is None:
            recent = self.store.list_conversations(limit=1)
            target = recent[0] if recent else None
        engine_import.show_first(target)  # the model loaded early is this chat's
        if target is None:
            self.new_conversation()
        else:
            self.select_conversation(target.id)
        # The model loads after the first paint: the inference thread first imports
        # the engine (llama.cpp, numpy), then the chat's model is resolved and loaded.
        # A plain queued connection and a flag, not a single-shot connection: the worker
        # thread that emits would remove a single-shot one itself, holding Qt's lock on
        # this window while PySide waits for the interpreter, which the GUI thread may
        # hold while it waits for that lock (showing the window): a deadlock, seen once.
        self._preload_pending = True
        self.inference.engine_ready.connect(self._preload_after_start)
        QTimer.singleShot(0, self.inference.prepare)
        # Files changed, added or removed while the app was closed, picked up off the GUI
        # thread once the window is up.
        QTimer.singleShot(0, self._update_documents_after_start)

    @Slot()
    def _update_documents_after_start(self) -> None:
        if not self.shutdown.closing:  # a window closed at once has no store to index into
            self.chat.documents_bar.update_collections()

    @Slot()
    def _preload_after_start(self) -> None:
        # Once. A message sent before the engine was ready loads the model for its reply;
        # a window closed meanwhile loads nothing (its store may be closed already).
        pending, self._preload_pending = self._preload_pending, False
        if (pending and not self.shutdown.closing and not self.ctx.busy.now().jobs
                and self.inference.state == ModelState.UNLOADED):
            self.chat.preload_model()

    @Slot(int)
    def _on_job_started(self, job_id: int) -> None:
        self.status.show_job_started(job_id, self.inference.remote_connection(job_id))

    @Slot(int, object)
    def _on_job_ended(self, job_id: int, _end: object) -> None:
        self.status.show_job_ended(job_id, self.inference.state)

    # -- conversations ------------------------------------------------------------------------
    @property
    def current_id(self) -> int | None:
        """The id of the conversation on screen."""
        return self.chat.conversation_id

    def current_conversation(self) -> Conversation | None:
        """The conversation on screen."""
        return self.chat.current_conversation()

    @Slot()
    def stop(self) -> None:
        """Stop the reply being written in the chat on screen."""
        self.chat.stop()

    def new_chat_settings(self) -> tuple[str, SamplingParams]:
        """What a new chat starts with: the default preset's system prompt and sampling
        settings, else those of Preferences."""
        return self.ctx.presets.new_chat_settings(self.ctx.settings.current)

    @Slot()
    def new_conversation(self) -> None:
        """Start a new chat and show it."""
        system_prompt, params = self.new_chat_settings()
        # A refused write leaves the chat on screen as it was.
        self.ops.run(lambda: self.store.create_conversation(
            system_prompt=system_prompt, params=params, model_id=None),
            lambda made: chat_changed(made.id), initiator=self, success=self._show_new)

    def _show_new(self, conversation: Conversation) -> None:
        self.select_conversation(conversation.id)
        self.chat.composer.setFocus()

    def select_conversation(self, conversation_id: int) -> None:
        """Select a conversation in the sidebar (which opens it)."""
        self.sidebar.select(conversation_id)

    @Slot(int, int)
    def open_message(self, conversation_id: int, message_id: int) -> None:
        """Open a chat on the branch that holds a message (a search hit), and show it."""
        problems: list[str] = []
        if not self.controller.generating_in(conversation_id):
            try:  # a refused write still opens the chat, on the branch it had
                # On the pane's behalf: it is shown below, once.
                self.ops.run(lambda: self.store.show_branch(message_id),
                             messages_changed(conversation_id), initiator=self.chat,
                             report=problems.append)
            except KeyError:  # deleted since the search
                return
        if self.current_id == conversation_id:
            self.chat.show_conversation(conversation_id)
        else:
            self.select_conversation(conversation_id)
        self.chat.scroll_to_message(message_id)
        for problem in problems:
            self.report_problem(problem)

    @Slot(int)
    def open_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation in the chat pane, and remember it for the next start."""
        self.chat.show_conversation(conversation_id)
        if self.chat.conversation_id is not None:
            opened = str(self.chat.conversation_id)
            self.ops.run(lambda: self.store.set_state(LAST_CONVERSATION_KEY, opened),
                         Changes(), initiator=self)

    @Slot()
    def delete_current(self) -> None:
        """Delete the current conversation, after asking."""
        conversation = self.current_conversation()
        if conversation is None:
            return
        answer = QMessageBox.question(
            self, "Delete conversation",
            f"Delete “{conversation.title}” and all its messages? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.delete_conversation(conversation.id)

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete without asking (the menu asks first)."""
        self.controller.stop(conversation_id)
        # A refused write keeps the chat, in the list and on screen.
        self.ops.run(lambda: self.store.delete_conversation(conversation_id),
                     Changes(deleted_chats=frozenset({conversation_id})), initiator=self,
                     success=lambda _none: self._after_delete(conversation_id))

    def _after_delete(self, conversation_id: int) -> None:
        first = self.sidebar.first_conversation()
        if first is None:
            self.new_conversation()
        elif self.current_id in (conversation_id, None):
            self.select_conversation(first.id)

    @Slot(object)
    def _on_message_added(self, message: Message) -> None:
        self.ops.announce(messages_changed(message.conversation_id), self.controller)

    @Slot(object)
    def _on_controller_chat_changed(self, conversation: Conversation) -> None:
        self.ops.announce(chat_changed(conversation.id), self.controller)

    @Slot(object)
    def _on_chat_kept(self, conversation: Conversation) -> None:
        self.ops.announce(messages_changed(conversation.id), self.local_api)

    # -- export and import ---------------------------------------------------------------------
    @Slot()
    def export_current(self) -> None:
        """Save the chat on screen (the branch shown) as Markdown."""
        conversation = self.current_conversation()
        if conversation is not None:
            self.transfer.export_markdown(conversation)

    @Slot()
    def export_current_json(self) -> None:
        """Save the chat on screen, every branch and version, as JSON."""
        conversation = self.current_conversation()
        if conversation is not None:
            self.transfer.export_json(conversation)

    @Slot()
    def back_up_all(self) -> None:
        """Every chat into a folder."""
        self.transfer.export_all()

    @Slot()
    def import_files(self) -> None:
        """Import exported chats (JSON files)."""
        self.transfer.import_file_dialog()

    @Slot()
    def import_folder(self) -> None:
        """Import a backup folder."""
        self.transfer.import_folder_dialog()

    @Slot(object)
    def _on_imported(self, conversation: Conversation) -> None:
        # Each one listed; the last one opens.
        self.ops.announce(chat_changed(conversation.id), self.transfer)
        self.select_conversation(conversation.id)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Exported chats (JSON files) and backup folders may be dropped here."""
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        """Keep accepting what the drag brought in."""
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Import what was dropped."""
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.transfer.import_paths(paths)

    # -- replies (the Chat menu) -------------------------------------------------------------
    @Slot()
    def regenerate_current(self) -> None:
        """A new version of the selected reply (else the last one)."""
        reply_id = self.chat.replies.target_reply()
        if reply_id is not None:
            self.chat.regenerate(reply_id)

    @Slot()
    def compare_current(self) -> None:
        """Compare the versions of the selected reply (else the last one)."""
        self.chat.replies.compare(self.chat.replies.target_reply())

    def step_version(self, step: int) -> None:
        """Show the previous (-1) or next (+1) version of the selected message, else of
        the last reply."""
        row = self.chat.message_view.selected_row()
        message_id = row.message_id if row is not None else self.chat.replies.target_reply()
        if message_id is not None:
            self.chat.show_version(message_id, step)

    @Slot(str)
    def report_problem(self, text: str) -> None:
        """A failure the user can act on, in the chat's banner (see ``ui.user_errors``)."""
        self.chat.banner.show_message(text)

    @Slot(str)
    def show_notice(self, text: str) -> None:
        """A short note in the status bar."""
        self.status.showMessage(text, NOTICE_MS)

    @Slot(object)
    def _sync_appearance(self, settings: AppSettings) -> None:
        action = self.menu_actions.themes.get(settings.appearance.theme)
        if action is not None:
            action.setChecked(True)

    # -- models -------------------------------------------------------------------------------
    @Slot()
    def refresh_models(self) -> None:
        """Fill the model picker from the registry."""
        self.chat.model_picker.refresh()

    @Slot()
    def show_models(self) -> None:
        """Open the Models window (built on first use)."""
        if self.models_window is None:
            # Imported here: the Hub client is heavy, and start-up should not pay for it.
            from llamadesk.ui.model_manager_window import ModelManagerWindow

            try:
                self.models_window = ModelManagerWindow(
                    self.ctx.paths, self.ctx.registry, self.ctx.resolver.n_ctx(),
                    self, settings=lambda: self.ctx.settings.current)
            except CatalogError as exc:
                log.error("the Models window cannot open: %s", exc)
                self.chat.banner.show_message(
                    f"The Models window cannot open ({exc}). Installed models still work; "
                    "reinstalling LlamaDesk restores the catalog.")
                return
            self.models_window.page.models_changed.connect(
                lambda: self.ops.announce(Changes(models=True), self.models_window))
        self.models_window.show()
        self.models_window.raise_()
        self.models_window.activateWindow()

    def _stop_services(self) -> None:
        """Stop what this window started beside the chat (the document indexer, the
        question embedder and the reply checkpoints' writer, the local API, the Models
        window's threads): a step of ``ui/shutdown.Shutdown.finish``."""
        self.controller.indexer.shutdown()
        self.controller.query_embedder.shutdown()
        self.controller.checkpoints.shutdown()  # writes what waits, before the store closes
        self.local_api.stop()
        if self.models_window is not None:
            self.models_window.shutdown()

    # -- dialogs ------------------------------------------------------------------------------
    @Slot()
    def show_local_api_access(self) -> None:
        """Preferences, open on who may use the local API."""
        self.show_preferences(local_api=True)

    @Slot()
    def show_preferences(self, local_api: bool = False) -> None:
        """App-wide settings (``local_api``: open on the Local API tab)."""
        # Imported when first opened: the dialog and its pages are not needed to paint
        # the window (tests/ui/test_startup_imports.py).
        from llamadesk.ui.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.ctx.settings.current, self, self.ctx.presets,
                                   self.ctx.remote_models, self.local_api.keys,
                                   self.ctx.paths, self.ops)
        if local_api:
            dialog.tabs.setCurrentWidget(dialog.local_api_page)
        if dialog.exec():
            wanted = dialog.result_settings()
            # A file write, which can stall: off the GUI thread. A failed save still
            # applies to this session; the model is preloaded with the new settings.
            self.ops.run_in_background(lambda: self.ctx.settings.update(wanted),
                                       Changes(settings=True), initiator=dialog,
                                       success=lambda _none: self.chat.preload_model(),
                                       report=self._settings_not_saved)
            presets, default = self.ctx.presets, dialog.default_preset()
            if default != presets.default_name:
                # In place: the preset book belongs to this thread (ui/operations.py).
                self.ops.run(lambda: presets.set_default(default), Changes(presets=True),
                             initiator=dialog)

    def _settings_not_saved(self, text: str) -> None:
        self.report_problem(text)
        self.chat.preload_model()  # they apply all the same

    @Slot()
    def show_about(self) -> None:
        """About and diagnostics."""
        info = self.inference.model_info
        line = f"{info.name} ({info.path})" if info else "none loaded"
        from llamadesk.ui.dialogs import AboutDialog  # not needed to paint the window

        AboutDialog(self.ctx.paths, line, self).exec()

    # -- closing ------------------------------------------------------------------------------
    def _keep_on_screen(self) -> None:
        """What closing keeps of the window: the chat settings being edited, its size."""
        self.chat.settings_panel.flush()
        geometry = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        # Only the window's size is lost if this fails; closing goes on.
        self.ops.run(lambda: self.store.set_state(GEOMETRY_KEY, geometry), Changes(),
                     initiator=self, report=self.show_notice)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Close through the app's one shutdown sequence (``ui/shutdown.py``): a reply
        being written is stopped and stored first, then the window closes."""
        if not self.shutdown.may_close():
            event.ignore()
            return
        event.accept()
        self.shutdown.window_closed()
