"""The inference service's signals, declared once in a class of their own: the service
inherits them, its workers emit them, and a fake service for UI tests shares them."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class InferenceSignals(QObject):
    """The inference service's signals, declared once: the worker emits them from its
    thread and Qt delivers them queued to receivers on the GUI thread.

    Signals:
        state_changed(str): a ModelState value.
        model_loaded(ModelInfo): a load finished.
        model_info_changed(ModelInfo): the loaded model's chat template failed while
            rendering and was replaced by its fallback (``template_warning`` says why).
        model_load_failed(str): a load failed; the reason is readable.
        model_unloaded(): the loaded model was freed (a load that failed after freeing
            the previous model).
        generation_started(int): the job's prompt is being read.
        token_batch_ready(int, str): more text of the job's reply.
        generation_finished(int, GenerationResult): the reply is complete.
        generation_cancelled(int, GenerationResult): stopped; the partial reply.
        generation_failed(int, str): the reply failed; the reason is readable.
    """

    state_changed = Signal(str)
    model_loaded = Signal(object)
    model_info_changed = Signal(object)
    model_load_failed = Signal(str)
    model_unloaded = Signal()
    engine_ready = Signal()
    generation_started = Signal(int)
    token_batch_ready = Signal(int, str)
    generation_finished = Signal(int, object)
    generation_cancelled = Signal(int, object)
    generation_failed = Signal(int, str)
