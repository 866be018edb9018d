"""The main window: conversations on the left, the chat in the middle, its settings on
the right. It is made of parts (``ConversationSidebar``, ``ChatPane`` with its
``ModelPicker``, ``AppStatusBar``) and keeps what spans them: menus, the splitter,
restoring the last chat and the window's size, and closing without losing a reply."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QSplitter

from llamadesk import APP_NAME
from llamadesk.core.catalog import CatalogError
from llamadesk.core.conversation import Conversation, Message
from llamadesk.core.export import conversation_markdown, file_name_for, write_text_atomically
from llamadesk.core.store import LAST_CONVERSATION_KEY
from llamadesk.services.settings import SettingsSaveError
from llamadesk.ui.chat_pane import ChatPane
from llamadesk.ui.context import AppContext
from llamadesk.ui.dialogs import AboutDialog, PreferencesDialog
from llamadesk.ui.sidebar import ConversationSidebar
from llamadesk.ui.status_bar import AppStatusBar

if TYPE_CHECKING:
    from llamadesk.ui.model_manager_window import ModelManagerWindow

__all__ = ["AppContext", "MainWindow"]

log = logging.getLogger(__name__)

GEOMETRY_KEY = "window_geometry"

_Shortcut = QKeySequence | QKeySequence.StandardKey | str | None


class MainWindow(QMainWindow):
    """The LlamaDesk window.

    Parts: ``sidebar`` (ConversationSidebar), ``chat`` (ChatPane, whose settings panel
    sits on the right), ``status`` (AppStatusBar)."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.store = ctx.store
        self.controller = ctx.controller
        self.inference = ctx.inference
        self.models_window: ModelManagerWindow | None = None
        self._closing = False
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 760)

        self.sidebar = ConversationSidebar(ctx.store)
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

        self._build_menus()
        self._connect_parts()
        self.refresh_models()
        self.status.show_state(self.inference.state)
        self._restore()

    # -- set-up -------------------------------------------------------------------------------
    def _action(self, menu: QMenu, text: str, slot: object,
                shortcut: _Shortcut = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        menus = self.menuBar()
        file = menus.addMenu("&File")
        self._action(file, "&New chat", self.new_conversation, QKeySequence.StandardKey.New)
        self._action(file, "&Export chat as Markdown…", self.export_current, "Ctrl+E")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        chat = menus.addMenu("&Chat")
        self.stop_action = self._action(chat, "&Stop generating", self.stop, "Esc")
        self._action(chat, "&Rename…", self.sidebar.rename_current, "F2")
        self._action(chat, "&Delete…", self.delete_current, "Ctrl+Shift+Backspace")
        chat.addSeparator()
        self._action(chat, "Focus the &message box", self.chat.composer.setFocus, "Ctrl+L")
        self._action(chat, "Search &all chats", self.sidebar.focus_search,
                     QKeySequence.StandardKey.Find)
        self._action(chat, "Chat &settings", self.chat.settings_button.toggle, "Ctrl+Shift+S")
        models = menus.addMenu("&Models")
        self._action(models, "&Manage models…", self.show_models, "Ctrl+M")
        settings = menus.addMenu("&Settings")
        # Explicit: the platform's "Preferences" key is empty on some Linux desktops.
        self._action(settings, "&Preferences…", self.show_preferences, "Ctrl+,")
        help_menu = menus.addMenu("&Help")
        self._action(help_menu, "&About and diagnostics", self.show_about)

    def _connect_parts(self) -> None:
        side, chat, status = self.sidebar, self.chat, self.status
        side.conversation_selected.connect(self.open_conversation)
        side.new_chat_requested.connect(self.new_conversation)
        side.delete_requested.connect(self.delete_current)
        side.conversation_renamed.connect(chat.show_title_of)
        side.problem.connect(chat.banner.show_message)
        chat.new_chat_needed.connect(self.new_conversation)
        chat.models_requested.connect(self.show_models)
        chat.busy_changed.connect(self.stop_action.setEnabled)
        c, inf = self.controller, self.inference
        c.conversation_changed.connect(side.show_changed)
        c.message_added.connect(self._on_message_added)
        c.reply_finished.connect(status.show_reply_speed)
        # After the pane's own slots (connected first): the partial reply is stored and
        # shown before a pending close goes ahead.
        c.reply_finished.connect(self._close_if_done)
        c.reply_failed.connect(self._close_if_done)
        inf.state_changed.connect(status.show_state)
        inf.model_loaded.connect(status.show_model)
        inf.model_load_failed.connect(status.show_no_model)

    def _restore(self) -> None:
        geometry = self.store.get_state(GEOMETRY_KEY)
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii")))
        last = self.store.get_state(LAST_CONVERSATION_KEY)
        target = self.store.get_conversation(int(last)) if last and last.isdigit() else None
        if target is None:
            recent = self.store.list_conversations(limit=1)
            target = recent[0] if recent else None
        if target is None:
            self.new_conversation()
        else:
            self.select_conversation(target.id)
        self.chat.preload_model()

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

    @Slot()
    def new_conversation(self) -> None:
        """Start a new chat and show it."""
        settings = self.ctx.settings.current
        conversation = self.store.create_conversation(
            system_prompt=settings.default_system_prompt, params=settings.defaults,
            model_id=None)
        self.sidebar.show_changed(conversation)
        self.select_conversation(conversation.id)
        self.chat.composer.setFocus()

    def select_conversation(self, conversation_id: int) -> None:
        """Select a conversation in the sidebar (which opens it)."""
        self.sidebar.select(conversation_id)

    @Slot(int)
    def open_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation in the chat pane, and remember it for the next start."""
        self.chat.show_conversation(conversation_id)
        if self.chat.conversation_id is not None:
            self.store.set_state(LAST_CONVERSATION_KEY, str(self.chat.conversation_id))

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
        self.store.delete_conversation(conversation_id)
        self.sidebar.remove(conversation_id)
        first = self.sidebar.first_conversation()
        if first is None:
            self.new_conversation()
        elif self.current_id in (conversation_id, None):
            self.select_conversation(first.id)

    @Slot(object)
    def _on_message_added(self, message: Message) -> None:
        self.sidebar.touch(message.conversation_id)

    def export_current(self) -> None:
        """Save the chat on screen as a Markdown file the user picks."""
        conversation = self.current_conversation()
        if conversation is None:
            return
        suggested = str(Path.home() / file_name_for(conversation.title))
        path, _filter = QFileDialog.getSaveFileName(self, "Export chat", suggested,
                                                    "Markdown (*.md)")
        if not path:
            return
        text = conversation_markdown(conversation, self.store.messages(conversation.id),
                                     self.ctx.names.as_dict())
        try:
            write_text_atomically(Path(path), text)
        except OSError as exc:
            self.chat.banner.show_message(f"The chat could not be exported: {exc}")
            return
        self.status.showMessage(f"Exported to {path}", 5000)

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
                    self.ctx.paths, self.ctx.registry, self.ctx.settings.current.defaults.n_ctx,
                    self, settings=lambda: self.ctx.settings.current)
            except CatalogError as exc:
                log.error("the Models window cannot open: %s", exc)
                self.chat.banner.show_message(
                    f"The Models window cannot open ({exc}). Installed models still work; "
                    "reinstalling LlamaDesk restores the catalog.")
                return
            self.models_window.page.models_changed.connect(self.refresh_models)
        self.models_window.show()
        self.models_window.raise_()
        self.models_window.activateWindow()

    def shutdown_services(self) -> None:
        """Stop the workers this window started (the Models window's)."""
        if self.models_window is not None:
            self.models_window.shutdown()

    # -- dialogs ------------------------------------------------------------------------------
    @Slot()
    def show_preferences(self) -> None:
        """App-wide hardware settings."""
        dialog = PreferencesDialog(self.ctx.settings.current, self)
        if dialog.exec():
            try:
                self.ctx.settings.update(dialog.result_settings())
            except SettingsSaveError as exc:
                self.chat.banner.show_message(str(exc))
            self.chat.preload_model()

    @Slot()
    def show_about(self) -> None:
        """About and diagnostics."""
        info = self.inference.model_info
        line = f"{info.name} ({info.path})" if info else "none loaded"
        AboutDialog(self.ctx.paths, line, self).exec()

    # -- closing ------------------------------------------------------------------------------
    @Slot()
    def _close_if_done(self) -> None:
        if self._closing and not self.controller.busy:
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop any reply first, so its partial text is stored, then close."""
        self.chat.settings_panel.flush()
        self.store.set_state(GEOMETRY_KEY,
                             bytes(self.saveGeometry().toBase64().data()).decode("ascii"))
        if self.controller.busy:
            self._closing = True
            self.controller.stop()
            event.ignore()
            return
        event.accept()
