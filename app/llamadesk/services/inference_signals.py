"""The inference service's signals, declared once in a class of their own: the service
inherits them, its workers emit them, and a fake service for UI tests shares them."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from llamadesk.services.jobs import GenerateJob, JobEnd, TextBatcher


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
        generation_ended(int, JobEnd): the job's one final signal, always its last:
            the result (complete, or stopped with the partial reply) or the error.
    """

    state_changed = Signal(str)
    model_loaded = Signal(object)
    model_info_changed = Signal(object)
    model_load_failed = Signal(str)
    model_unloaded = Signal()
    engine_ready = Signal()
    generation_started = Signal(int)
    token_batch_ready = Signal(int, str)
    generation_ended = Signal(int, object)


class SignalSink:
    """A job's events (``job_runner.run_job``) as the inference service's signals,
    emitted on the worker's thread: the text in batches for the GUI, or straight to the
    job's own sink when it has one (the local API's), and ``generation_ended`` last.
    ``before_end`` runs first (the worker settles its state)."""

    def __init__(self, out: InferenceSignals, job: GenerateJob,
                 before_end: Callable[[], None] | None = None) -> None:
        self._out, self._job, self._before_end = out, job, before_end
        self._batcher = TextBatcher(self._emit_text)

    def _emit_text(self, text: str) -> None:
        self._out.token_batch_ready.emit(self._job.job_id, text)

    def started(self) -> None:
        """Say the job started, to the GUI and to the job's sink."""
        self._out.generation_started.emit(self._job.job_id)
        if self._job.sink is not None:
            self._job.sink.started()

    def text(self, piece: str) -> None:
        """A sink takes every piece at once; the window's batches stay for the GUI."""
        if self._job.sink is not None:
            self._job.sink.text(piece)
        else:
            self._batcher.add(piece)

    def ended(self, end: JobEnd) -> None:
        """The rest of the text, then the one final signal."""
        self._batcher.flush()
        if self._before_end is not None:
            self._before_end()
        if self._job.sink is not None:
            self._job.sink.ended(end)
        self._out.generation_ended.emit(self._job.job_id, end)
