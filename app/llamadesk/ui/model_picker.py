"""The chat header's model picker: which installed model answers in this chat."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QMessageBox, QWidget

from llamadesk.core.conversation import Conversation
from llamadesk.core.fit import FitLabel
from llamadesk.core.registry import ModelEntry, RegistryError
from llamadesk.core.store import ConversationStore
from llamadesk.services.remote_models import RemoteModelsService
from llamadesk.services.resolver import ModelResolver, fit_estimate
from llamadesk.services.settings import SettingsService
from llamadesk.ui import model_groups
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.operations import Changes, Operations, chat_changed


class ModelPicker(QComboBox):
    """Lists the installed models; picking one asks first when it may not fit in
    memory, then stores it on the chat and as the model of new chats.

    Signals:
        model_chosen(int, str): this chat now answers with this model (load it).
        problem(str): something the user should read (the registry is unreadable,
            the choice could not be saved).
    """

    model_chosen = Signal(int, str)
    problem = Signal(str)

    def __init__(self, store: ConversationStore, resolver: ModelResolver,
                 settings: SettingsService, names: ModelNames,
                 parent: QWidget | None = None,
                 remote_models: RemoteModelsService | None = None,
                 ops: Operations | None = None) -> None:
        super().__init__(parent)
        self._ops = ops if ops is not None else Operations(self)
        self._remote = remote_models
        if remote_models is not None:
            remote_models.changed.connect(self.refresh)
        self._store = store
        self._resolver = resolver
        self._settings = settings
        self._names = names
        self._entries: dict[str, ModelEntry] = {}
        self._conversation_id: int | None = None
        self.setAccessibleName("Model")
        self.setToolTip("The model that answers in this chat; switching keeps the conversation")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.activated.connect(self._on_picked)

    def refresh(self) -> None:
        """Fill the list from the registry."""
        registry = self._resolver.registry
        try:
            entries = registry.models() if registry is not None else []
        except RegistryError as exc:
            self.problem.emit(str(exc))
            entries = []
        self._entries = {e.id: e for e in entries}
        self._names.remember_entries(entries)
        self.blockSignals(True)
        self.clear()
        model_groups.fill(
            self, [(e.name if e.available else f"{e.name} (file missing)", e.id)
                   for e in entries],
            self._remote.models() if self._remote is not None else {})
        self.blockSignals(False)
        conversation_id = self._conversation_id
        self.show_conversation(self._store.get_conversation(conversation_id)
                               if conversation_id else None)

    def show_conversation(self, conversation: Conversation | None) -> None:
        """Show the model that answers in this chat."""
        self._conversation_id = conversation.id if conversation else None
        model_id = self._resolver.effective_model_id(conversation.model_id
                                                     if conversation else None)
        self.blockSignals(True)
        self.setCurrentIndex(self.findData(model_id))
        self.blockSignals(False)

    def entries(self) -> list[ModelEntry]:
        """The installed models listed (as of the last refresh), in the list's order."""
        return list(self._entries.values())

    def fits(self, entry: ModelEntry, n_ctx: int) -> bool:
        """Whether to go ahead with ``entry``: yes, unless the fit estimate says it will
        not fit and the user, asked, says no."""
        estimate = fit_estimate(self._settings.current, entry.size, entry.shape,
                                entry.context_length, n_ctx)
        if estimate.label != FitLabel.WONT_FIT:
            return True
        answer = QMessageBox.question(
            self, "This model may not fit",
            f"{entry.name}: {estimate.explanation}\n\nLoading it may make this computer "
            "very slow or fail. Load it anyway?")
        return answer == QMessageBox.StandardButton.Yes

    @Slot(int)
    def _on_picked(self, index: int) -> None:
        model_id = self.itemData(index)
        conversation_id = self._conversation_id
        conversation = self._store.get_conversation(conversation_id) if conversation_id else None
        if (conversation is None or not model_id
                or model_id == self._resolver.effective_model_id(conversation.model_id)):
            return
        if not self._resolver.picked_becomes_default(model_id):
            # A remote model: nothing to fit here, and not made the model of new chats,
            # so a new chat never sends its text away unless the user picks so again.
            self._store_choice(conversation.id, model_id)
            return
        entry = self._entries.get(model_id)
        if entry is None or not self.fits(entry, conversation.params.n_ctx):
            self.show_conversation(conversation)
            return
        # The chat switches model from its next reply on; new chats use it too (a failed
        # settings save applies to this session all the same).
        if self._store_choice(conversation.id, model_id, announce=False):
            self._ops.run(lambda: self._settings.set_default_model(model_id),
                          Changes(settings=True), initiator=self, report=self.problem.emit)
            self.model_chosen.emit(conversation.id, model_id)

    def _store_choice(self, conversation_id: int, model_id: str,
                      announce: bool = True) -> bool:
        """Store the chat's model (an operation; a refused write is reported and the
        picker shows the model stored)."""
        done = self._ops.run(
            lambda: self._store.update_conversation(conversation_id, model_id=model_id),
            chat_changed(conversation_id), initiator=self, report=self.problem.emit)
        if not done:
            self.show_conversation(self._store.get_conversation(conversation_id))
        elif announce:
            self.model_chosen.emit(conversation_id, model_id)
        return done
