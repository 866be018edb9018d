"""The chat pane: the header (title, model picker), the messages, an error banner and
the composer. It shows one conversation and streams its replies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QMimeData, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.chat_formats import FALLBACK_FORMATS
from llamadesk.core.conversation import Conversation, Message, SamplingParams
from llamadesk.core.documents.quoting import sources_by_message
from llamadesk.core.registry import RegistryError
from llamadesk.core.settings import AppSettings
from llamadesk.ui.banner import ErrorBanner
from llamadesk.ui.chat_notices import ChatNotices
from llamadesk.ui.composer import Composer
from llamadesk.ui.context import AppContext
from llamadesk.ui.documents_bar import DocumentsBar
from llamadesk.ui.elided_label import ElidedLabel
from llamadesk.ui.message_links import MessageLinks
from llamadesk.ui.message_model import PAGE_SIZE, MessageListModel
from llamadesk.ui.message_view import MessageView
from llamadesk.ui.model_picker import ModelPicker
from llamadesk.ui.operations import Changes, chat_changed, messages_changed
from llamadesk.ui.remote_marker import RemoteMarker
from llamadesk.ui.reply_actions import ReplyActions
from llamadesk.ui.settings_panel import ChatSettingsPanel

if TYPE_CHECKING:
    from llamadesk.services.engine_types import ModelInfo

#: How long after a chat is shown its first send is prepared (ms).
PREPARE_SEND_MS = 300
#: How long after a reply starts its row is added, unless its first text comes sooner
#: (ms): the start follows the send within a few ms, and a row added then was laid out
#: and painted in the send's frame, a second time.
REPLY_ROW_MS = 40


class ChatPane(QWidget):
    """One conversation: its messages, its replies as they stream, its versions.

    The chat's settings panel belongs to the pane (it must be flushed before a send),
    but the window places it, beside the pane in the splitter.

    Signals:
        busy_changed(bool): whether a reply to the chat on screen is queued or running.
        new_chat_needed(): a message was sent with no chat open (make one, now).
        models_requested(): the Models… button was pressed.
        notice(str): a short note for the status bar (code was copied).
    """

    busy_changed = Signal(bool)
    new_chat_needed = Signal()
    models_requested = Signal()
    notice = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.store = ctx.store
        self.controller = ctx.controller
        self.conversation_id: int | None = None
        self.model_picker = ModelPicker(ctx.store, ctx.resolver, ctx.settings, ctx.names,
                                        remote_models=ctx.remote_models,
                                        ops=ctx.operations)
        self.remote_marker = RemoteMarker()
        self.model_picker.model_chosen.connect(self._on_model_chosen)
        self.messages = MessageListModel(self)
        self.messages.source_lookup = lambda ids: sources_by_message(self.store, ids)
        self.message_view = MessageView(ctx.names)
        self.message_view.setModel(self.messages)
        self.message_view.regenerate_requested.connect(self.regenerate)
        self.message_view.edit_requested.connect(self.edit_message)
        self.message_view.version_requested.connect(self.show_version)
        self.links = MessageLinks(self.message_view)
        self.links.copied.connect(self.notice)
        self.replies = ReplyActions(self, self)
        self.message_view.menu_about_to_show.connect(self.replies.add_to_menu)
        self.banner = ErrorBanner()
        self.replies.problem.connect(self.banner.show_message)
        self.model_picker.problem.connect(self.banner.show_message)
        #: What went wrong in a chat not on screen, said when it is opened.
        self.notices = ChatNotices(self.banner, self.store, self.notice.emit)
        self.composer = Composer()
        self.composer.submitted.connect(self._send)
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._send_or_stop)
        self.settings_panel = self._make_settings_panel(ctx.settings.current)
        ctx.settings.changed.connect(self._on_app_settings_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.addLayout(self._make_header())
        layout.addWidget(self.message_view, 1)
        layout.addWidget(self.banner)
        self.documents_bar = DocumentsBar(ctx.controller.documents, ctx.controller.indexer,
                                          ctx.operations)
        layout.addWidget(self.documents_bar)
        self.setAcceptDrops(True)  # files dropped on the chat are attached
        composer_row = QHBoxLayout()
        composer_row.addWidget(self.composer, 1)
        composer_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(composer_row)
        self._connect_services()

    def _make_header(self) -> QHBoxLayout:
        self.title_label = ElidedLabel()
        self.title_label.setObjectName("chatTitle")
        # A font, not a style sheet: a widget with a style sheet keeps its colours when
        # the theme changes.
        title_font = self.title_label.font()
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setWeight(QFont.Weight.DemiBold)
        self.title_label.setFont(title_font)
        models_button = QToolButton()
        models_button.setObjectName("modelsButton")
        models_button.setText("Models…")
        models_button.setToolTip("Find, download and manage models (Ctrl+M)")
        models_button.clicked.connect(self.models_requested)
        self.settings_button = QToolButton()
        self.settings_button.setText("Settings")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip("Show this chat's settings (Ctrl+Shift+S)")
        self.settings_button.toggled.connect(self.settings_panel.setVisible)
        self.context_label = QLabel()  # tokens in use / context length
        self.context_label.setObjectName("contextLabel")
        self.context_label.setToolTip("The model's context: tokens in use / its length")
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.context_label)
        header.addWidget(self.remote_marker)
        header.addWidget(self.model_picker)
        header.addWidget(models_button)
        header.addWidget(self.settings_button)
        return header

    def _make_settings_panel(self, settings: AppSettings) -> ChatSettingsPanel:
        panel = ChatSettingsPanel(self.ctx.presets, self.ctx.operations)
        panel.defaults = settings.defaults
        panel.default_system_prompt = settings.default_system_prompt
        panel.settings_changed.connect(self._on_chat_settings_changed)
        panel.setMinimumWidth(260)
        panel.hide()
        return panel

    def _connect_services(self) -> None:
        c, inf = self.controller, self.ctx.inference
        c.question_added.connect(self._on_question_added)  # shown before it is synced
        c.sync_failed.connect(self._on_sync_failed)
        c.reply_started.connect(self._on_reply_started)
        c.reply_text.connect(self._on_reply_text)
        c.reply_finished.connect(self._on_reply_finished)
        c.reply_failed.connect(self._on_reply_failed)
        self.ctx.operations.changed.connect(self._on_changes)
        c.context_changed.connect(self._on_context_changed)
        inf.model_loaded.connect(self._on_model_loaded)
        inf.model_info_changed.connect(self._on_model_loaded)  # shows a template warning
        inf.model_load_failed.connect(self._on_model_load_failed)

    # -- the conversation on screen ----------------------------------------------------------
    def current_conversation(self) -> Conversation | None:
        """The conversation on screen, as stored now."""
        return self.store.get_conversation(self.conversation_id) if self.conversation_id else None

    def show_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation's messages (and its reply so far, if one is being
        written), title, model and settings."""
        self.settings_panel.flush()
        self.conversation_id = conversation_id
        conversation = self.current_conversation()
        self.banner.hide()
        self.documents_bar.show_conversation(conversation.id if conversation else None)
        if conversation is None:
            self.conversation_id = None
            self.messages.clear()
            self.title_label.setText("")
            self.context_label.setText("")
            self.settings_panel.show_conversation(None)
            self._sync_send_button()
            return
        self.notices.opened(conversation.id)
        # Only the end of the branch is read; older pages are read as the user scrolls
        # up, so a chat of 20,000 messages opens as fast as one of 20.
        page = self.store.branch_tail(conversation.id, PAGE_SIZE)
        self.messages.set_messages(page, self.store.version_counts_of([m.id for m in page]),
                                   older_pages=self._older_page)
        if self.controller.generating_in(conversation.id):
            self.messages.begin_reply()
            live = self.controller.live_text(conversation.id)
            if live:
                self.messages.append_reply_text(live)
        self.message_view.scroll_to_end()
        self.title_label.setText(conversation.title)
        self.model_picker.show_conversation(conversation)
        self._show_destination()
        self.settings_panel.show_conversation(conversation)
        self.controller.announce_context(conversation.id)
        self._sync_send_button()
        # What the first send needs is prepared off this thread, once the chat has
        # painted (the branch's read would compete with the painting for the GIL).
        cid = conversation.id
        QTimer.singleShot(PREPARE_SEND_MS, self, lambda: self._prepare_send(cid))

    def _prepare_send(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            self.controller.prepare_send(conversation_id)

    def _older_page(self, message_id: int,
                    count: int) -> tuple[list[Message], dict[int, tuple[int, int]]]:
        page = self.store.branch_before(message_id, count)
        return page, self.store.version_counts_of([m.id for m in page])

    @Slot(int, object, int, int)
    def _on_context_changed(self, conversation_id: int, first_in_memory: int | None,
                            used: int, n_ctx: int) -> None:
        if conversation_id == self.conversation_id:
            self.messages.set_memory_start(first_in_memory)
            self.context_label.setText(f"{used:,} / {n_ctx:,} tokens" if used else "")

    def scroll_to_message(self, message_id: int) -> bool:
        """Show and select a message of the branch on screen (loading older pages as
        needed); False if it is not on that branch."""
        row = self.messages.row_of_message(message_id)
        while row is None and self.messages.has_older:
            self.messages.load_older()
            row = self.messages.row_of_message(message_id)
        if row is None:
            return False
        index = self.messages.index(row)
        self.message_view.doItemsLayout()
        self.message_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.message_view.scrollTo(index, MessageView.ScrollHint.PositionAtCenter)
        return True

    def set_chat_font(self, font: QFont) -> None:
        """The chat's text size changed: the messages and the composer use ``font``."""
        self.message_view.setFont(font)
        self.composer.setFont(font)
        self.composer.updateGeometry()

    @Slot(object, object)
    def _on_changes(self, changes: Changes, initiator: object) -> None:
        """Follow what other views (and the controller) changed: the chat on screen
        renamed, given another model, deleted, or shown on another branch."""
        current = self.conversation_id
        if changes.models:
            self.model_picker.refresh()
        self.notices.forget(changes.deleted_chats)
        if changes.deleted_chats:  # their KV states go, in memory and kept for a launch
            self.ctx.inference.forget_chats(changes.deleted_chats)
        if current is None:
            return
        if current in changes.deleted_chats:
            self.show_conversation(None)
            return
        if current in changes.chats:
            conversation = self.current_conversation()
            if conversation is not None:
                self.title_label.setText(conversation.title)
                self.model_picker.show_conversation(conversation)
                self._show_destination()
        # The controller's messages arrive through its own signals, as they stream.
        if current in changes.messages and initiator not in (self, self.controller):
            self.show_conversation(current)

    def preload_model(self) -> None:
        """Load the chat's model now, so the first reply starts quickly."""
        try:
            spec = self.ctx.resolver.chat_spec(self.current_conversation())
        except LookupError as exc:
            self.banner.show_message(str(exc))
            return
        self.ctx.inference.load_model(spec)

    @Slot(int, str)
    def _on_model_chosen(self, _conversation_id: int, _model_id: str) -> None:
        self._show_destination()
        self.preload_model()

    def _show_destination(self) -> None:
        """Mark a chat whose text goes to a remote server."""
        conversation = self.current_conversation()
        self.remote_marker.show_for(
            self.ctx.resolver.effective_model_id(conversation.model_id if conversation
                                                 else None), self.ctx.settings.current)

    @Slot(int, str, object)
    def _on_chat_settings_changed(self, conversation_id: int, system_prompt: str,
                                  params: SamplingParams) -> None:
        # A refused write: the panel keeps the edit; the stored settings stay.
        self.ctx.operations.run(
            lambda: self.store.update_conversation(conversation_id,
                                                   system_prompt=system_prompt, params=params),
            chat_changed(conversation_id), initiator=self.settings_panel,
            report=lambda text: self.banner.show_message(
                f"The chat's settings were not saved. {text}"))

    @Slot(object)
    def _on_app_settings_changed(self, settings: AppSettings) -> None:
        self.settings_panel.defaults = settings.defaults
        self.settings_panel.default_system_prompt = settings.default_system_prompt

    # -- sending -----------------------------------------------------------------------------
    @Slot()
    def _send_or_stop(self) -> None:
        if self.busy:
            self.stop()
        else:
            self.composer.submit()

    @Slot(str)
    def _send(self, text: str) -> None:
        if self.conversation_id is None:
            self.new_chat_needed.emit()
        if self.conversation_id is None:
            return
        self.settings_panel.flush()
        self.banner.hide()
        if self.controller.send(self.conversation_id, text) is not None:
            self.composer.clear()
            self.message_view.follow_end()  # once laid out: one layout for the new row
        self.documents_bar.refresh()  # the attachments went with the message
        self._sync_send_button()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept files dragged onto the chat (a chat export, JSON, goes on to the window,
        which imports it)."""
        if self._dropped_documents(event.mimeData()) and self.conversation_id is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """Attach the files dropped onto the chat to the next message."""
        paths = self._dropped_documents(event.mimeData())
        if not paths:
            event.ignore()
            return
        self.documents_bar.attach(paths)
        event.acceptProposedAction()

    @staticmethod
    def _dropped_documents(mime: QMimeData) -> list[Path]:
        """The local files of a drop, unless it holds a chat export (``.json``)."""
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        return [] if any(p.suffix.lower() == ".json" for p in paths) else paths

    def stop(self) -> None:
        """Stop the reply being written in this chat."""
        if self.conversation_id is not None:
            self.controller.stop(self.conversation_id)

    @property
    def busy(self) -> bool:
        """Whether a reply to this chat is queued or being written."""
        return (self.conversation_id is not None
                and self.controller.generating_in(self.conversation_id))

    def _sync_send_button(self) -> None:
        busy = self.busy
        self.send_button.setText("Stop" if busy else "Send")
        self.send_button.setToolTip("Stop generating (Esc)" if busy
                                    else "Send the message (Enter)")
        self.busy_changed.emit(busy)

    # -- versions (edits and regenerations keep the old branch) ------------------------------
    @Slot(int)
    def regenerate(self, reply_id: int, model_id: str | None = None) -> bool:
        """Write a new version of a reply (with ``model_id``, else the chat's model)."""
        started = self.controller.regenerate(reply_id, model_id)
        if started:
            self.show_conversation(self.conversation_id)
        self._sync_send_button()
        return started

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
            self.show_conversation(self.conversation_id)
            self._sync_send_button()

    @Slot(int, int)
    def show_version(self, message_id: int, step: int) -> None:
        """Show another version of a message (and the conversation that followed it)."""
        ids = [m.id for m in self.store.versions(message_id)]
        if message_id not in ids or self.busy:
            return
        target = ids.index(message_id) + step
        if 0 <= target < len(ids):
            conversation_id = self.conversation_id
            self.ctx.operations.run(lambda: self.store.show_branch(ids[target]),
                                    messages_changed(conversation_id) if conversation_id
                                    else Changes(), initiator=self,
                                    success=lambda _none: self.show_conversation(
                                        self.conversation_id))

    # -- streaming ---------------------------------------------------------------------------
    @Slot(object)
    def _on_question_added(self, message: Message) -> None:
        if message.conversation_id == self.conversation_id:
            self.messages.append_message(message)

    @Slot(int, str)
    def _on_sync_failed(self, conversation_id: int, reason: str) -> None:
        self.notices.say(conversation_id, self.conversation_id, reason)

    @Slot(int)
    def _on_reply_started(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            QTimer.singleShot(REPLY_ROW_MS, self, lambda: self._add_reply_row(conversation_id))
        self._sync_send_button()

    def _add_reply_row(self, conversation_id: int) -> None:
        """The reply's row, once: not if its text, its end or another chat came first;
        a row already there (the chat shown again by a regenerate or an edit) gets the
        model's name."""
        if (conversation_id != self.conversation_id
                or not self.controller.generating_in(conversation_id)):
            return
        model = self.controller.reply_model(conversation_id)
        if self.messages.streaming_row is None:
            self.messages.begin_reply(model)
        else:
            self.messages.name_reply_model(model)

    @Slot(int, str)
    def _on_reply_text(self, conversation_id: int, text: str) -> None:
        if conversation_id == self.conversation_id:
            self._add_reply_row(conversation_id)
            self.messages.append_reply_text(text)

    @Slot(int, object)
    def _on_reply_finished(self, conversation_id: int, message: Message | None) -> None:
        if conversation_id == self.conversation_id:
            versions = self.store.versions(message.id) if message is not None else []
            alternatives = None
            if message is not None and len(versions) > 1:
                alternatives = ([m.id for m in versions].index(message.id) + 1, len(versions))
            self.messages.finish_reply(message, alternatives)
        self._sync_send_button()

    @Slot(int, str)
    def _on_reply_failed(self, conversation_id: int, reason: str) -> None:
        if conversation_id == self.conversation_id:
            self.messages.end_reply()
        self.notices.say(conversation_id, self.conversation_id, f"The reply failed: {reason}")
        self._sync_send_button()

    # -- the model ---------------------------------------------------------------------------
    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.ctx.names.remember(info.model_id, info.name)
        if info.template_warning:
            self.banner.show_message(
                f"This model's chat template is broken: {info.template_warning}",
                "Choose chat format…", lambda: self.choose_chat_format(info.model_id))

    def choose_chat_format(self, model_id: str) -> None:
        """Let the user pick the format used for a model whose own template does not work;
        the model's next reply loads it with that one."""
        entry = self.ctx.registry.get(model_id)
        if entry is None:
            return
        names = sorted(FALLBACK_FORMATS)
        chosen, ok = QInputDialog.getItem(
            self, "Chat format", f"The format {entry.name} is prompted in when its own "
            "template does not work:", names, names.index(entry.chat_format)
            if entry.chat_format in names else 0, False)
        if not ok or chosen == entry.chat_format:
            return
        try:
            self.ctx.registry.set_chat_format(model_id, chosen)
        except RegistryError as exc:
            self.banner.show_message(f"The chat format was not changed: {exc}")

    @Slot(str)
    def _on_model_load_failed(self, reason: str) -> None:
        self.banner.show_message(f"The model could not be loaded: {reason}")
