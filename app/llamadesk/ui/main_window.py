"""The main window: conversations on the left, the chat in the middle, its settings on
the right. Thin: it binds models to views and forwards intent to the services."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QItemSelectionModel, QModelIndex, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llamadesk import APP_NAME
from llamadesk.core import bundled
from llamadesk.core.conversation import Conversation, Message, Role, SamplingParams
from llamadesk.core.export import conversation_markdown, file_name_for, write_text_atomically
from llamadesk.core.fit import FitLabel, MemoryBudget, estimate_fit
from llamadesk.core.hardware import probe
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelEntry, ModelRegistry, RegistryError
from llamadesk.core.settings import GPU_LAYERS_NONE, AppSettings, save_settings
from llamadesk.core.store import LAST_CONVERSATION_KEY, ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.engine import ModelInfo, supports_gpu_offload
from llamadesk.services.inference import InferenceService, ModelState
from llamadesk.services.resolver import ModelResolver
from llamadesk.ui.composer import Composer
from llamadesk.ui.conversation_list import ConversationIdRole, ConversationListModel
from llamadesk.ui.dialogs import AboutDialog, PreferencesDialog
from llamadesk.ui.message_model import MessageListModel
from llamadesk.ui.message_view import MODEL_NAMES, MessageView
from llamadesk.ui.search import ResultConversationRole, SearchResultsModel
from llamadesk.ui.settings_panel import ChatSettingsPanel

if TYPE_CHECKING:
    from llamadesk.ui.models_window import ModelsWindow

log = logging.getLogger(__name__)

GEOMETRY_KEY = "window_geometry"
STATE_LABELS = {
    ModelState.UNLOADED: "No model loaded",
    ModelState.LOADING: "Loading model…",
    ModelState.READY: "Ready",
    ModelState.GENERATING: "Generating…",
}


@dataclass
class AppContext:
    """What the window needs from the app: data, services and settings."""

    paths: AppPaths
    store: ConversationStore
    inference: InferenceService
    controller: ChatController
    resolve_model: ModelResolver
    settings: AppSettings
    registry: ModelRegistry


class ErrorBanner(QWidget):
    """A dismissable line that says what went wrong, above the composer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.setStyleSheet("#errorBanner { background: rgba(220, 60, 60, 40); "
                           "border: 1px solid rgba(220, 60, 60, 120); border-radius: 6px; }")
        self.hide()

    def show_message(self, text: str) -> None:
        """Show ``text``."""
        self.label.setText(text)
        self.show()


class MainWindow(QMainWindow):
    """The LlamaDesk window."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.store = ctx.store
        self.controller = ctx.controller
        self.inference = ctx.inference
        self.current_id: int | None = None
        self._closing = False
        self.setWindowTitle(APP_NAME)
        self.resize(1180, 760)

        # Sidebar: conversations.
        self.conversations = ConversationListModel(self.store, self)
        self.conversation_view = QListView()
        self.conversation_view.setModel(self.conversations)
        self.conversation_view.setAccessibleName("Conversations")
        self.conversation_view.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed
                                               | QAbstractItemView.EditTrigger.DoubleClicked)
        self.conversation_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.conversation_view.customContextMenuRequested.connect(self._conversation_menu)
        self.conversation_view.selectionModel().currentChanged.connect(self._on_current_changed)
        new_button = QPushButton("+  New chat")
        new_button.setToolTip("Start a new conversation (Ctrl+N)")
        new_button.clicked.connect(self.new_conversation)
        # Search across every chat: typing swaps the list for the matching messages.
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search all chats (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setAccessibleName("Search chats")
        self.search_results = SearchResultsModel(self.store, self)
        self.results_view = QListView()
        self.results_view.setModel(self.search_results)
        self.results_view.setAccessibleName("Search results")
        self.results_view.setWordWrap(True)
        self.results_view.setAlternatingRowColors(True)
        self.results_view.activated.connect(self._open_result)
        self.results_view.clicked.connect(self._open_result)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self._run_search)
        self.search_box.textChanged.connect(lambda _text: self._search_timer.start())
        self.search_box.returnPressed.connect(self._run_search)
        self.sidebar_stack = QStackedWidget()
        self.sidebar_stack.addWidget(self.conversation_view)
        self.sidebar_stack.addWidget(self.results_view)
        sidebar = QWidget()
        side_layout = QVBoxLayout(sidebar)
        side_layout.setContentsMargins(6, 6, 0, 6)
        side_layout.addWidget(new_button)
        side_layout.addWidget(self.search_box)
        side_layout.addWidget(self.sidebar_stack, 1)

        # Chat: header, messages, error banner, composer.
        self.title_label = QLabel()
        self.title_label.setObjectName("chatTitle")
        self.title_label.setStyleSheet("#chatTitle { font-size: 15px; font-weight: 600; }")
        self.model_picker = QComboBox()
        self.model_picker.setAccessibleName("Model")
        self.model_picker.setToolTip("The model that answers in this chat; switching keeps "
                                     "the conversation")
        self.model_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_picker.activated.connect(self._on_model_picked)
        self.models_button = QToolButton()
        self.models_button.setText("Models…")
        self.models_button.setToolTip("Find, download and manage models (Ctrl+M)")
        self.models_button.clicked.connect(self.show_models)
        self.models_window: ModelsWindow | None = None
        self.settings_button = QToolButton()
        self.settings_button.setText("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip("Show this chat's settings (Ctrl+Shift+S)")
        self.context_label = QLabel()  # tokens in use / context length
        self.context_label.setObjectName("contextLabel")
        self.context_label.setToolTip("The model's context: tokens in use / its length")
        header = QHBoxLayout()
        header.addWidget(self.title_label)
        header.addStretch(1)
        header.addWidget(self.context_label)
        header.addWidget(self.model_picker)
        header.addWidget(self.models_button)
        header.addWidget(self.settings_button)

        self.messages = MessageListModel(self)
        self.message_view = MessageView()
        self.message_view.setModel(self.messages)
        self.message_view.regenerate_requested.connect(self.regenerate)
        self.message_view.edit_requested.connect(self.edit_message)
        self.message_view.version_requested.connect(self.show_version)
        self.banner = ErrorBanner()
        self.composer = Composer()
        self.composer.submitted.connect(self._send)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._send_or_stop)
        composer_row = QHBoxLayout()
        composer_row.addWidget(self.composer, 1)
        composer_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        chat = QWidget()
        chat_layout = QVBoxLayout(chat)
        chat_layout.setContentsMargins(8, 6, 8, 8)
        chat_layout.addLayout(header)
        chat_layout.addWidget(self.message_view, 1)
        chat_layout.addWidget(self.banner)
        chat_layout.addLayout(composer_row)

        # Settings panel.
        self.settings_panel = ChatSettingsPanel()
        self.settings_panel.defaults = ctx.settings.defaults
        self.settings_panel.default_system_prompt = ctx.settings.default_system_prompt
        self.settings_panel.settings_changed.connect(self._on_settings_changed)
        self.settings_panel.setMinimumWidth(260)
        self.settings_panel.hide()
        self.settings_button.toggled.connect(self.settings_panel.setVisible)

        splitter = QSplitter()
        splitter.addWidget(sidebar)
        splitter.addWidget(chat)
        splitter.addWidget(self.settings_panel)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([250, 900, 280])
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        # Status bar: model, state, speed.
        self.status_model = QLabel()
        self.status_state = QLabel()
        self.status_speed = QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(14)
        self.busy.setTextVisible(False)
        self.busy.hide()
        bar = self.statusBar()
        bar.addWidget(self.status_model)
        bar.addWidget(self.status_state)
        bar.addWidget(self.busy)
        bar.addPermanentWidget(self.status_speed)

        self._build_menus()
        self._connect_services()
        self.refresh_models()
        self._on_state_changed(self.inference.state)
        self._restore()

    # -- set-up ---------------------------------------------------------------------------
    def _action(self, menu: QMenu, text: str, slot: object,
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None) -> QAction:
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
        self._action(chat, "&Rename…", self.rename_current, "F2")
        self._action(chat, "&Delete…", self.delete_current, "Ctrl+Shift+Backspace")
        chat.addSeparator()
        self._action(chat, "Focus the &message box", self.composer.setFocus, "Ctrl+L")
        self._action(chat, "Search &all chats", self.focus_search, QKeySequence.StandardKey.Find)
        self._action(chat, "Chat &settings", self.settings_button.toggle, "Ctrl+Shift+S")
        models = menus.addMenu("&Models")
        self._action(models, "&Manage models…", self.show_models, "Ctrl+M")
        settings = menus.addMenu("&Settings")
        # Explicit: the platform's "Preferences" key is empty on some Linux desktops.
        self._action(settings, "&Preferences…", self.show_preferences, "Ctrl+,")
        help_menu = menus.addMenu("&Help")
        self._action(help_menu, "&About and diagnostics", self.show_about)

    def _connect_services(self) -> None:
        c, inf = self.controller, self.inference
        c.message_added.connect(self._on_message_added)
        c.reply_started.connect(self._on_reply_started)
        c.reply_text.connect(self._on_reply_text)
        c.reply_finished.connect(self._on_reply_finished)
        c.reply_failed.connect(self._on_reply_failed)
        c.conversation_changed.connect(self._on_conversation_changed)
        c.context_changed.connect(self._on_context_changed)
        self.conversations.renamed.connect(self._on_conversation_changed)
        inf.state_changed.connect(self._on_state_changed)
        inf.model_loaded.connect(self._on_model_loaded)
        inf.model_load_failed.connect(self._on_model_load_failed)

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
        self.preload_model()

    def preload_model(self) -> None:
        """Load the current chat's model now, so the first reply starts quickly."""
        conversation = self.current_conversation()
        try:
            spec = self.ctx.resolve_model(conversation.model_id if conversation else None,
                                          conversation.params.n_ctx if conversation
                                          else self.ctx.settings.defaults.n_ctx)
        except LookupError as exc:
            self.banner.show_message(str(exc))
            return
        self.inference.load_model(spec)

    # -- conversations --------------------------------------------------------------------
    def current_conversation(self) -> Conversation | None:
        """The conversation on screen."""
        return self.store.get_conversation(self.current_id) if self.current_id else None

    def new_conversation(self) -> None:
        """Start a new chat and show it."""
        settings = self.ctx.settings
        conversation = self.store.create_conversation(
            system_prompt=settings.default_system_prompt, params=settings.defaults,
            model_id=None)
        self.conversations.upsert(conversation)
        self.select_conversation(conversation.id)
        self.composer.setFocus()

    def select_conversation(self, conversation_id: int) -> None:
        """Select a conversation in the sidebar (which opens it)."""
        row = self.conversations.row_of(conversation_id)
        if row is None:
            conversation = self.store.get_conversation(conversation_id)
            if conversation is None:
                return
            self.conversations.upsert(conversation)
            row = 0
        index = self.conversations.index(row)
        self.conversation_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.conversation_view.scrollTo(index)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        conversation_id = current.data(ConversationIdRole) if current.isValid() else None
        self.open_conversation(conversation_id)

    def open_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation's messages and settings."""
        self.settings_panel.flush()
        self.current_id = conversation_id
        conversation = self.current_conversation()
        self.banner.hide()
        if conversation is None:
            self.messages.clear()
            self.title_label.setText("")
            self.settings_panel.show_conversation(None)
            self._sync_send_button()
            return
        self.messages.set_messages(self.store.messages(conversation.id),
                                   self.store.version_counts(conversation.id))
        if self.controller.generating_in(conversation.id):
            self.messages.begin_reply()
            live = self.controller.live_text(conversation.id)
            if live:
                self.messages.append_reply_text(live)
        self.message_view.scroll_to_end()
        self.title_label.setText(conversation.title)
        self._show_model_of(conversation)
        self.settings_panel.show_conversation(conversation)
        self.store.set_state(LAST_CONVERSATION_KEY, str(conversation.id))
        self.controller.announce_context(conversation.id)
        self._sync_send_button()

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
                                     dict(MODEL_NAMES))
        try:
            write_text_atomically(Path(path), text)
        except OSError as exc:
            self.banner.show_message(f"The chat could not be exported: {exc}")
            return
        self.statusBar().showMessage(f"Exported to {path}", 5000)

    # -- search ----------------------------------------------------------------------------
    def focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.search_box.setFocus()
        self.search_box.selectAll()

    def _run_search(self) -> None:
        self._search_timer.stop()
        query = self.search_box.text().strip()
        if not query:
            self.sidebar_stack.setCurrentWidget(self.conversation_view)
            return
        self.search_results.search(query)
        self.sidebar_stack.setCurrentWidget(self.results_view)

    @Slot(QModelIndex)
    def _open_result(self, index: QModelIndex) -> None:
        conversation_id = index.data(ResultConversationRole)
        if conversation_id is not None:
            self.select_conversation(int(conversation_id))

    def rename_current(self) -> None:
        """Edit the current conversation's title in place."""
        index = self.conversation_view.currentIndex()
        if index.isValid():
            self.conversation_view.edit(index)

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
        self.conversations.remove(conversation_id)
        if self.conversations.rowCount() == 0:
            self.new_conversation()
        elif self.current_id == conversation_id or self.current_id is None:
            self.select_conversation(self.conversations.conversation_at(0).id)  # type: ignore[union-attr]

    def _conversation_menu(self, pos: object) -> None:
        index = self.conversation_view.indexAt(pos)  # type: ignore[arg-type]
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.conversation_view.edit(index))
        menu.addAction("Delete…", self.delete_current)
        menu.exec(self.conversation_view.viewport().mapToGlobal(pos))  # type: ignore[arg-type]

    @Slot(object)
    def _on_conversation_changed(self, conversation: Conversation) -> None:
        self.conversations.upsert(conversation)
        if conversation.id == self.current_id:
            self.title_label.setText(conversation.title)

    @Slot(int, str, object)
    def _on_settings_changed(self, conversation_id: int, system_prompt: str,
                             params: SamplingParams) -> None:
        self.store.update_conversation(conversation_id, system_prompt=system_prompt,
                                       params=params)

    # -- sending and streaming ---------------------------------------------------------------
    def _send_or_stop(self) -> None:
        if self.current_id is not None and self.controller.generating_in(self.current_id):
            self.stop()
        else:
            self.composer.submit()

    @Slot(str)
    def _send(self, text: str) -> None:
        if self.current_id is None:
            self.new_conversation()
        assert self.current_id is not None
        self.settings_panel.flush()
        self.banner.hide()
        if self.controller.send(self.current_id, text) is not None:
            self.composer.clear()
            self.message_view.scroll_to_end()
        self._sync_send_button()

    # -- versions (edits and regenerations keep the old branch) ----------------------------
    @Slot(int)
    def regenerate(self, reply_id: int) -> None:
        """Write a new version of a reply."""
        if self.controller.regenerate(reply_id):
            self.open_conversation(self.current_id)
        self._sync_send_button()

    @Slot(int)
    def edit_message(self, message_id: int) -> None:
        """Edit a message of yours: the edit is a new version, answered afresh."""
        original = self.store.get_message(message_id)
        if original is None or self.controller.generating_in(original.conversation_id):
            return
        text, ok = QInputDialog.getMultiLineText(self, "Edit message",
                                                 "The original stays as another version.",
                                                 original.content)
        if ok and text.strip() and text.strip() != original.content.strip():
            self.controller.edit(message_id, text)
            self.open_conversation(self.current_id)
            self._sync_send_button()

    @Slot(int, int)
    def show_version(self, message_id: int, step: int) -> None:
        """Show another version of a message (and the conversation that followed it)."""
        versions = self.store.versions(message_id)
        ids = [m.id for m in versions]
        if message_id not in ids or (self.current_id is not None
                                     and self.controller.generating_in(self.current_id)):
            return
        target = ids.index(message_id) + step
        if 0 <= target < len(ids):
            self.store.show_branch(ids[target])
            self.open_conversation(self.current_id)

    def stop(self) -> None:
        """Stop the reply being written in this chat."""
        if self.current_id is not None:
            self.controller.stop(self.current_id)

    @Slot(object)
    def _on_message_added(self, message: Message) -> None:
        if message.conversation_id == self.current_id and message.role == Role.USER:
            self.messages.append_message(message)
        self.conversations.touch(message.conversation_id)

    @Slot(int)
    def _on_reply_started(self, conversation_id: int) -> None:
        if conversation_id == self.current_id:
            self.messages.begin_reply(self.inference.model_info.model_id
                                      if self.inference.model_info else None)
        self._sync_send_button()

    @Slot(int, str)
    def _on_reply_text(self, conversation_id: int, text: str) -> None:
        if conversation_id == self.current_id:
            self.messages.append_reply_text(text)

    @Slot(int, object)
    def _on_reply_finished(self, conversation_id: int, message: Message | None) -> None:
        if conversation_id == self.current_id:
            versions = self.store.versions(message.id) if message is not None else []
            alternatives = None
            if len(versions) > 1:
                alternatives = ([m.id for m in versions].index(message.id) + 1, len(versions))
            self.messages.finish_reply(message, alternatives)
        if message is not None and message.stats.tokens_per_s:
            self.status_speed.setText(f"Last reply: {message.stats.tokens_per_s:.1f} tokens/s")
        self._sync_send_button()
        self._close_if_done()

    @Slot(int, object, int, int)
    def _on_context_changed(self, conversation_id: int, first_in_memory: int | None,
                            used: int, n_ctx: int) -> None:
        if conversation_id == self.current_id:
            self.messages.set_memory_start(first_in_memory)
            self.context_label.setText(f"{used:,} / {n_ctx:,} tokens" if used else "")

    @Slot(int, str)
    def _on_reply_failed(self, conversation_id: int, reason: str) -> None:
        if conversation_id == self.current_id:
            self.messages.end_reply()
            self.banner.show_message(f"The reply failed: {reason}")
        self._sync_send_button()
        self._close_if_done()

    def _sync_send_button(self) -> None:
        busy = self.current_id is not None and self.controller.generating_in(self.current_id)
        self.send_button.setText("Stop" if busy else "Send")
        self.send_button.setToolTip("Stop generating (Esc)" if busy
                                    else "Send the message (Enter)")
        self.stop_action.setEnabled(busy)

    # -- model state -------------------------------------------------------------------------
    @Slot(str)
    def _on_state_changed(self, state: str) -> None:
        model_state = ModelState(state)
        self.status_state.setText(STATE_LABELS[model_state])
        # Only while loading: an animated bar repaints all the time, and while a reply
        # streams the reply itself (and the Stop button) show that work is going on.
        self.busy.setVisible(model_state == ModelState.LOADING)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        MODEL_NAMES[info.model_id] = info.name
        self.status_model.setText(f"{info.name} · context {info.n_ctx:,}")
        if info.template_warning:
            self.banner.show_message(f"This model's chat template is broken: "
                                     f"{info.template_warning}")

    @Slot(str)
    def _on_model_load_failed(self, reason: str) -> None:
        self.status_model.setText("No model")
        self.banner.show_message(f"The model could not be loaded: {reason}")

    # -- models --------------------------------------------------------------------------
    def model_of(self, conversation: Conversation | None) -> str:
        """The id of the model that answers in ``conversation``."""
        if conversation is not None and conversation.model_id:
            return conversation.model_id
        return self.ctx.settings.model_id or bundled.manifest().id

    def refresh_models(self) -> None:
        """Fill the model picker from the registry."""
        try:
            entries = self.ctx.registry.models()
        except RegistryError as exc:
            self.banner.show_message(str(exc))
            entries = []
        self._entries = {e.id: e for e in entries}
        self.model_picker.blockSignals(True)
        self.model_picker.clear()
        for entry in entries:
            label = entry.name if entry.available else f"{entry.name} (file missing)"
            self.model_picker.addItem(label, entry.id)
            MODEL_NAMES[entry.id] = entry.name
        self.model_picker.blockSignals(False)
        self._show_model_of(self.current_conversation())

    def _show_model_of(self, conversation: Conversation | None) -> None:
        index = self.model_picker.findData(self.model_of(conversation))
        self.model_picker.blockSignals(True)
        self.model_picker.setCurrentIndex(index)
        self.model_picker.blockSignals(False)

    def _fits(self, entry: ModelEntry, n_ctx: int) -> bool:
        """Ask before loading a model that will not fit in memory."""
        gpu = supports_gpu_offload() and self.ctx.settings.hardware.gpu_layers != GPU_LAYERS_NONE
        estimate = estimate_fit(entry.size, entry.shape, n_ctx,
                                MemoryBudget.from_hardware(probe()), gpu_offload=gpu)
        if estimate.label != FitLabel.WONT_FIT:
            return True
        answer = QMessageBox.question(
            self, "This model may not fit",
            f"{entry.name}: {estimate.explanation}\n\nLoading it may make this computer "
            "very slow or fail. Load it anyway?")
        return answer == QMessageBox.StandardButton.Yes

    @Slot(int)
    def _on_model_picked(self, index: int) -> None:
        model_id = self.model_picker.itemData(index)
        conversation = self.current_conversation()
        if conversation is None or not model_id or model_id == self.model_of(conversation):
            return
        entry = self._entries.get(model_id)
        if entry is None or not self._fits(entry, conversation.params.n_ctx):
            self._show_model_of(conversation)
            return
        # The chat switches model from its next reply on; new chats use it too.
        self.store.update_conversation(conversation.id, model_id=model_id)
        self.ctx.settings = replace(self.ctx.settings, model_id=model_id)
        try:
            save_settings(self.ctx.paths.settings_file, self.ctx.settings)
        except OSError as exc:
            log.warning("could not save the default model: %s", exc)
        self.preload_model()

    def show_models(self) -> None:
        """Open the Models window (built on first use)."""
        if self.models_window is None:
            # Imported here: the Hub client is heavy, and start-up should not pay for it.
            from llamadesk.ui.models_window import ModelsWindow

            self.models_window = ModelsWindow(self.ctx.paths, self.ctx.registry,
                                              self.ctx.settings.defaults.n_ctx, self)
            self.models_window.page.models_changed.connect(self.refresh_models)
        self.models_window.show()
        self.models_window.raise_()
        self.models_window.activateWindow()

    def shutdown_services(self) -> None:
        """Stop the workers this window started (the Models window's)."""
        if self.models_window is not None:
            self.models_window.shutdown()

    # -- dialogs -------------------------------------------------------------------------
    def show_preferences(self) -> None:
        """App-wide hardware settings."""
        dialog = PreferencesDialog(self.ctx.settings, self)
        if dialog.exec():
            self.ctx.settings = dialog.result_settings()
            self.settings_panel.defaults = self.ctx.settings.defaults
            try:
                save_settings(self.ctx.paths.settings_file, self.ctx.settings)
            except OSError as exc:
                self.banner.show_message(f"The preferences could not be saved: {exc}")
            self.preload_model()

    def show_about(self) -> None:
        """About and diagnostics."""
        info = self.inference.model_info
        line = f"{info.name} ({info.path})" if info else "none loaded"
        AboutDialog(self.ctx.paths, line, self).exec()

    # -- closing -----------------------------------------------------------------------------
    def _close_if_done(self) -> None:
        if self._closing and not self.controller.busy:
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop any reply first, so its partial text is stored, then close."""
        self.settings_panel.flush()
        self.store.set_state(GEOMETRY_KEY,
                             bytes(self.saveGeometry().toBase64().data()).decode("ascii"))
        if self.controller.busy:
            self._closing = True
            self.controller.stop()
            event.ignore()
            return
        event.accept()
