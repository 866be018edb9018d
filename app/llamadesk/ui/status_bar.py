"""The window's status bar: the loaded model, what the worker is doing, the last speed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from llamadesk.core.conversation import Message
from llamadesk.services.jobs import ModelState

if TYPE_CHECKING:
    from llamadesk.services.engine_types import ModelInfo

STATE_LABELS = {
    ModelState.UNLOADED: "No model loaded",
    ModelState.LOADING: "Loading model…",
    ModelState.READY: "Ready",
    ModelState.GENERATING: "Generating…",
}


class AppStatusBar(QStatusBar):
    """Model name and context, model state (with a busy bar while loading), and the
    last reply's speed. Its slots are connected by the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel()
        self.state_label = QLabel()
        self.speed_label = QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(14)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.addWidget(self.model_label)
        self.addWidget(self.state_label)
        self.addWidget(self.busy)
        self.addPermanentWidget(self.speed_label)
        self._remote: dict[int, str] = {}  # remote jobs running: job id -> connection

    @Slot(str)
    def show_state(self, state: str) -> None:
        """Show a ModelState."""
        model_state = ModelState(state)
        if not self._remote:
            self.state_label.setText(STATE_LABELS[model_state])
        # Only while loading: an animated bar repaints all the time, and while a reply
        # streams the reply itself (and the Stop button) show that work is going on.
        self.busy.setVisible(model_state == ModelState.LOADING)

    def show_job_started(self, job_id: int, connection: str | None) -> None:
        """A job started; ``connection`` names the remote server writing its reply (None:
        the local model, whose own state the label already shows)."""
        if connection is not None:
            self._remote[job_id] = connection
            self.state_label.setText(f"Generating on {connection}…")

    def show_job_ended(self, job_id: int, local_state: str) -> None:
        """A job ended: the label goes back to the local model's state unless another
        remote reply is still being written."""
        self._remote.pop(job_id, None)
        if self._remote:
            self.state_label.setText(f"Generating on {next(iter(self._remote.values()))}…")
        else:
            self.show_state(local_state)

    @Slot(object)
    def show_model(self, info: ModelInfo) -> None:
        """A model loaded."""
        self.model_label.setText(f"{info.name} · context {info.n_ctx:,}")

    @Slot(str)
    def show_no_model(self, _reason: str) -> None:
        """A model failed to load (the chat pane says why)."""
        self.model_label.setText("No model")

    @Slot(int, object)
    def show_reply_speed(self, _conversation_id: int, message: Message | None) -> None:
        """A reply was stored: show how fast it was written."""
        if message is not None and message.stats.tokens_per_s:
            self.speed_label.setText(f"Last reply: {message.stats.tokens_per_s:.1f} tokens/s")
