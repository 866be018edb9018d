"""The per-chat settings panel: a preset, the system prompt and sampling parameters."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.conversation import Conversation, SamplingParams
from llamadesk.core.presets import Preset, PresetBook
from llamadesk.ui.operations import Operations
from llamadesk.ui.presets_menu import PresetChooser
from llamadesk.ui.sampling_form import SamplingFields

DEBOUNCE_MS = 400


class ChatSettingsPanel(QWidget):
    """Edits one conversation's settings; changes are reported after a short pause
    (a preset applies at once).

    Signals:
        settings_changed(int, str, SamplingParams): conversation id, system prompt, params.
    """

    settings_changed = Signal(int, str, object)

    def __init__(self, presets: PresetBook, operations: Operations,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._conversation_id: int | None = None
        self._loading = False
        self.defaults = SamplingParams()  # what "Reset to defaults" restores
        self.default_system_prompt = ""
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("How the assistant should behave")
        self.system_prompt.setMaximumHeight(110)
        self.system_prompt.setTabChangesFocus(True)
        self.fields = SamplingFields(self)
        f = self.fields
        self.temperature, self.top_p, self.top_k, self.min_p = (f.temperature, f.top_p,
                                                                 f.top_k, f.min_p)
        self.repeat_penalty, self.max_tokens, self.n_ctx, self.seed = (
            f.repeat_penalty, f.max_tokens, f.n_ctx, f.seed)
        self.presets = PresetChooser(presets, self._shown_settings, operations)
        self.presets.apply_requested.connect(self.apply_preset)

        form = QFormLayout()
        form.addRow("Preset", self.presets)
        self.system_prompt.setAccessibleName("System prompt")
        form.addRow("System prompt", self.system_prompt)
        f.add_rows(form)
        reset = QPushButton("Reset to defaults")
        reset.setToolTip("The system prompt and sampling settings of Preferences")
        reset.clicked.connect(self._reset)
        title = QLabel("<b>Chat settings</b>")
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(reset)
        layout.addStretch(1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit)
        self.system_prompt.textChanged.connect(self._changed)
        f.changed.connect(self._changed)
        self.setEnabled(False)

    def show_conversation(self, conversation: Conversation | None) -> None:
        """Show (and edit) this conversation's settings."""
        self.flush()
        self._conversation_id = conversation.id if conversation else None
        self.setEnabled(conversation is not None)
        if conversation is None:
            return
        self._show(conversation.system_prompt, conversation.params)

    def _show(self, system_prompt: str, params: SamplingParams) -> None:
        self._loading = True
        try:
            self.system_prompt.setPlainText(system_prompt)
            self.fields.set_params(params)
        finally:
            self._loading = False
        self.presets.show_matching(system_prompt, self.params())

    def _shown_settings(self) -> tuple[str, SamplingParams]:
        return self.system_prompt.toPlainText(), self.params()

    def params(self) -> SamplingParams:
        """The parameters as shown."""
        return self.fields.params()

    @Slot(object)
    def apply_preset(self, preset: Preset) -> None:
        """Give the chat on screen this preset's system prompt and sampling settings
        (its context length stays), and store them at once."""
        if self._conversation_id is None:
            return
        self._timer.stop()
        self._show(preset.system_prompt, preset.applied_to(self.params()))
        self._emit()

    def flush(self) -> None:
        """Report pending edits now (before switching chats or sending)."""
        if self._timer.isActive():
            self._timer.stop()
            self._emit()

    def _changed(self) -> None:
        if not self._loading and self._conversation_id is not None:
            self._timer.start()

    def _emit(self) -> None:
        if self._conversation_id is not None:
            system_prompt, params = self._shown_settings()
            self.presets.show_matching(system_prompt, params)
            self.settings_changed.emit(self._conversation_id, system_prompt, params)

    def _reset(self) -> None:
        if self._conversation_id is None:
            return
        self._timer.stop()
        self._show(self.default_system_prompt, replace(self.defaults))
        self._emit()
