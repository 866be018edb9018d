"""The per-chat settings panel: system prompt and sampling parameters."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.conversation import Conversation, SamplingParams

DEBOUNCE_MS = 400


def _double(minimum: float, maximum: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    return box


def _int(minimum: int, maximum: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    return box


class ChatSettingsPanel(QWidget):
    """Edits one conversation's settings; changes are reported after a short pause.

    Signals:
        settings_changed(int, str, SamplingParams): conversation id, system prompt, params.
    """

    settings_changed = Signal(int, str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._conversation_id: int | None = None
        self._loading = False
        self.defaults = SamplingParams()  # what "Reset to defaults" restores
        self.default_system_prompt = ""
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("How the assistant should behave")
        self.system_prompt.setMaximumHeight(110)
        self.temperature = _double(0.0, 2.0, 0.05)
        self.top_p = _double(0.0, 1.0, 0.01)
        self.top_k = _int(0, 1000)
        self.min_p = _double(0.0, 1.0, 0.01)
        self.repeat_penalty = _double(0.5, 2.0, 0.01)
        self.max_tokens = _int(1, 32768, 64)
        self.n_ctx = _int(256, 131072, 256)
        self.seed = _int(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.temperature.setToolTip("Higher is more varied, lower more predictable (0: greedy)")
        self.n_ctx.setToolTip("How many tokens of history the model sees; changing it "
                              "reloads the model")
        self.max_tokens.setToolTip("The longest reply, in tokens")

        form = QFormLayout()
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Top-k", self.top_k)
        form.addRow("Min-p", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Context length", self.n_ctx)
        form.addRow("Seed", self.seed)
        reset = QPushButton("Reset to defaults")
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
        for box in (self.temperature, self.top_p, self.top_k, self.min_p,
                    self.repeat_penalty, self.max_tokens, self.n_ctx, self.seed):
            box.valueChanged.connect(self._changed)
        self.setEnabled(False)

    def show_conversation(self, conversation: Conversation | None) -> None:
        """Show (and edit) this conversation's settings."""
        self.flush()
        self._conversation_id = conversation.id if conversation else None
        self.setEnabled(conversation is not None)
        if conversation is None:
            return
        self._loading = True
        p = conversation.params
        self.system_prompt.setPlainText(conversation.system_prompt)
        self.temperature.setValue(p.temperature)
        self.top_p.setValue(p.top_p)
        self.top_k.setValue(p.top_k)
        self.min_p.setValue(p.min_p)
        self.repeat_penalty.setValue(p.repeat_penalty)
        self.max_tokens.setValue(p.max_tokens)
        self.n_ctx.setValue(p.n_ctx)
        self.seed.setValue(p.seed)
        self._loading = False

    def params(self) -> SamplingParams:
        """The parameters as shown."""
        return SamplingParams(
            temperature=self.temperature.value(), top_p=self.top_p.value(),
            top_k=self.top_k.value(), min_p=self.min_p.value(),
            repeat_penalty=self.repeat_penalty.value(), max_tokens=self.max_tokens.value(),
            n_ctx=self.n_ctx.value(), seed=self.seed.value(),
        ).validated()

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
            self.settings_changed.emit(self._conversation_id,
                                       self.system_prompt.toPlainText(), self.params())

    def _reset(self) -> None:
        if self._conversation_id is None:
            return
        current = Conversation(self._conversation_id, "", 0, 0,
                               system_prompt=self.default_system_prompt,
                               params=replace(self.defaults))
        self.show_conversation(current)
        self._emit()
