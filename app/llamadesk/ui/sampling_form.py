"""The sampling settings as a form: used by a chat's settings panel and by Preferences
(the defaults for new chats)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QFormLayout, QSpinBox

from llamadesk.core.conversation import SamplingParams


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


class SamplingFields(QObject):
    """One spin box per sampling setting; the owner puts them in its form.

    Signals:
        changed(): the user changed a value (not emitted by ``set_params``).
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loading = False
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
        self.seed.setToolTip("The same seed and settings give the same reply; "
                             "random: a new one each time")
        for box in self.boxes():
            box.valueChanged.connect(self._on_changed)

    def boxes(self) -> list[QAbstractSpinBox]:
        """Every spin box, in the form's order."""
        return [self.temperature, self.top_p, self.top_k, self.min_p, self.repeat_penalty,
                self.max_tokens, self.n_ctx, self.seed]

    def add_rows(self, form: QFormLayout, context_length: bool = True) -> None:
        """Add a labelled row per setting (the label is each box's accessible name)."""
        rows: list[tuple[str, QAbstractSpinBox]] = [
            ("Temperature", self.temperature), ("Top-p", self.top_p), ("Top-k", self.top_k),
            ("Min-p", self.min_p), ("Repeat penalty", self.repeat_penalty),
            ("Max tokens", self.max_tokens), ("Context length", self.n_ctx),
            ("Seed", self.seed)]
        for label, box in rows:
            if box is self.n_ctx and not context_length:
                continue
            box.setAccessibleName(label)
            form.addRow(label, box)

    def set_params(self, params: SamplingParams) -> None:
        """Show ``params`` (without reporting a change)."""
        self._loading = True
        try:
            self.temperature.setValue(params.temperature)
            self.top_p.setValue(params.top_p)
            self.top_k.setValue(params.top_k)
            self.min_p.setValue(params.min_p)
            self.repeat_penalty.setValue(params.repeat_penalty)
            self.max_tokens.setValue(params.max_tokens)
            self.n_ctx.setValue(params.n_ctx)
            self.seed.setValue(params.seed)
        finally:
            self._loading = False

    def params(self) -> SamplingParams:
        """The parameters as shown."""
        return SamplingParams(
            temperature=self.temperature.value(), top_p=self.top_p.value(),
            top_k=self.top_k.value(), min_p=self.min_p.value(),
            repeat_penalty=self.repeat_penalty.value(), max_tokens=self.max_tokens.value(),
            n_ctx=self.n_ctx.value(), seed=self.seed.value(),
        ).validated()

    def _on_changed(self) -> None:
        if not self._loading:
            self.changed.emit()
