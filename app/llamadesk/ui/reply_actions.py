"""What a reply offers beyond the view's own menu: a new version written by another
installed model ("Regenerate with…"), and the Compare view of all its versions.

Reached from a reply's context menu and from the Chat menu (which acts on the selected
reply, else the last one), so the keyboard gets there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMenu, QWidget

from llamadesk.core.conversation import Conversation, Role
from llamadesk.core.store import ConversationStore
from llamadesk.ui.message_model import ChatRow, MessageListModel
from llamadesk.ui.operations import Changes

if TYPE_CHECKING:
    from llamadesk.ui.compare import CompareDialog
    from llamadesk.ui.context import AppContext
    from llamadesk.ui.message_view import MessageView
    from llamadesk.ui.model_picker import ModelPicker


class ReplyHost(Protocol):
    """What the reply actions need of their chat pane (``ui/chat_pane.ChatPane``), named
    here so that this module does not import the pane that builds it."""

    ctx: AppContext
    store: ConversationStore
    messages: MessageListModel
    message_view: MessageView
    model_picker: ModelPicker
    conversation_id: int | None

    @property
    def busy(self) -> bool: ...
    def current_conversation(self) -> Conversation | None: ...
    def show_conversation(self, conversation_id: int | None) -> None: ...
    def scroll_to_message(self, message_id: int) -> bool: ...
    def preload_model(self) -> None: ...
    def regenerate(self, reply_id: int, model_id: str | None = None) -> bool: ...


class ReplyActions(QObject):
    """Regenerate with another model, and compare a reply's versions, in one chat pane.

    Signals:
        problem(str): something the user should read (a model that is not installed).
    """

    problem = Signal(str)

    def __init__(self, pane: ReplyHost, parent: QWidget) -> None:
        super().__init__(parent)
        self._pane = pane
        self._parent = parent  # the dialogs' parent: the pane itself
        self.compare_dialog: CompareDialog | None = None

    # -- which reply ---------------------------------------------------------------------
    def target_reply(self) -> int | None:
        """The reply the Chat menu acts on: the selected message if it is a stored reply,
        else the last reply on screen."""
        selected = self._pane.message_view.selected_row()
        if _is_reply(selected):
            assert selected is not None
            return selected.message_id
        messages = self._pane.messages
        for row in reversed([messages.row_at(i) for i in range(messages.rowCount())]):
            if _is_reply(row):
                assert row is not None
                return row.message_id
        return None

    # -- menus -----------------------------------------------------------------------------
    @Slot(object, object)
    def add_to_menu(self, menu: QMenu, row: ChatRow) -> None:
        """Add "Regenerate with" and "Compare versions…" to a reply's context menu."""
        if not _is_reply(row) or row.message_id is None:
            return
        menu.addSeparator()
        models = menu.addMenu("Regenerate &with")
        self.fill_models_menu(models, row.message_id)
        compare = menu.addAction("&Compare versions…",
                                 lambda mid=row.message_id: self.compare(mid))
        compare.setEnabled(row.alternatives is not None)

    def fill_models_menu(self, menu: QMenu, reply_id: int | None) -> None:
        """One entry per installed model: a new version of the reply, written by it."""
        menu.clear()
        busy = self._pane.busy
        entries = [e for e in self._pane.model_picker.entries() if e.available]
        for entry in entries:
            action = menu.addAction(entry.name,
                                    lambda mid=entry.id: self.regenerate_with(reply_id, mid))
            action.setEnabled(reply_id is not None and not busy)
        if not entries:
            menu.addAction("No installed models").setEnabled(False)

    # -- doing it ----------------------------------------------------------------------------
    def regenerate_with(self, reply_id: int | None, model_id: str) -> bool:
        """Write a new version of the reply with ``model_id`` (loaded in turn: one model
        at a time); the versions so far stay. Returns whether it started."""
        reply = self._pane.store.get_message(reply_id) if reply_id is not None else None
        conversation = self._pane.current_conversation()
        if reply is None or conversation is None or reply.conversation_id != conversation.id:
            return False
        try:
            entry = self._pane.ctx.resolver.installed(model_id)
        except LookupError as exc:  # removed, or its file gone, since the menu was filled
            self.problem.emit(str(exc))
            return False
        if not self._pane.model_picker.fits(entry, conversation.params.n_ctx):
            return False
        return self._pane.regenerate(reply.id, model_id)

    def compare(self, reply_id: int | None) -> CompareDialog | None:
        """Open the Compare view for a reply's versions (not modal: the chat stays usable)."""
        store = self._pane.store
        reply = store.get_message(reply_id) if reply_id is not None else None
        if reply is None or reply.role != Role.ASSISTANT:
            return None
        versions = store.versions(reply.id)
        question = store.get_message(reply.parent_id) if reply.parent_id is not None else None
        on_screen = {m.id for m in store.messages(reply.conversation_id)}
        shown = next((m.id for m in versions if m.id in on_screen), None)
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        from llamadesk.ui.compare import CompareDialog  # Markdown: not at start-up

        dialog = CompareDialog(question, versions, shown, self._pane.ctx.names, self._parent)
        dialog.chosen.connect(self.keep)
        dialog.show()
        self.compare_dialog = dialog
        return dialog

    @Slot(int)
    def keep(self, message_id: int) -> None:
        """Continue the conversation from this version, with the model that wrote it."""
        pane = self._pane
        message = pane.store.get_message(message_id)
        if message is None or pane.busy:
            return
        conversation = pane.store.get_conversation(message.conversation_id)
        switch = (conversation is not None and message.model_id is not None
                  and message.model_id != pane.ctx.resolver.effective_model_id(
                      conversation.model_id))

        def go_on() -> None:
            pane.store.show_branch(message_id)
            if switch:
                pane.store.update_conversation(message.conversation_id,
                                               model_id=message.model_id)

        cid = message.conversation_id
        changes = Changes(messages=frozenset({cid}), chats=frozenset({cid} if switch else ()))
        # The pane is shown below, scrolled to the version kept.
        if not pane.ctx.operations.run(go_on, changes, initiator=pane, report=lambda text:
                                       self.problem.emit("The chat could not go on from "
                                                         f"that version. {text}")):
            return
        if switch:
            pane.preload_model()
        if message.conversation_id == pane.conversation_id:
            pane.show_conversation(pane.conversation_id)
            pane.scroll_to_message(message_id)


def _is_reply(row: ChatRow | None) -> bool:
    return (row is not None and row.role == Role.ASSISTANT and row.message_id is not None
            and not row.streaming)
