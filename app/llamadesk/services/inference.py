"""The inference service: one long-lived worker thread that owns the one model.

Requests are queued to the worker, so two requests run one after the other, never at
once. Every generation ends with exactly one of ``generation_finished``,
``generation_cancelled`` or ``generation_failed``; every load with exactly one of
``model_loaded`` or ``model_load_failed``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, replace
from enum import StrEnum

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from llamadesk.core.conversation import FinishReason, MessageStats
from llamadesk.services.engine import (
    EngineError,
    GenerationRequest,
    GenerationResult,
    LlamaEngine,
    LoadOptions,
    ModelInfo,
    install_llama_log_routing,
)

log = logging.getLogger(__name__)

#: How often streamed text is handed to the GUI (seconds).
BATCH_INTERVAL_S = 0.03


class ModelState(StrEnum):
    """What the inference worker is doing."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"


@dataclass(frozen=True)
class ModelSpec:
    """Which model file to use, and how to load it."""

    path: str
    model_id: str
    options: LoadOptions
    fallback_format: str = "chatml"
    name: str = ""  # shown to the user; the file's own name when blank


@dataclass(frozen=True)
class _GenerateJob:
    job_id: int
    request: GenerationRequest
    model: ModelSpec | None
    cancel: threading.Event


class _InferenceWorker(QObject):
    """Lives on the inference thread; only it touches the engine."""

    state_changed = Signal(str)
    model_loaded = Signal(object)
    model_info_changed = Signal(object)
    model_load_failed = Signal(str)
    model_unloaded = Signal()
    generation_started = Signal(int)
    token_batch_ready = Signal(int, str)
    generation_finished = Signal(int, object)
    generation_cancelled = Signal(int, object)
    generation_failed = Signal(int, str)

    def __init__(self, kv_cache_bytes: int) -> None:
        super().__init__()
        self._kv_cache_bytes = kv_cache_bytes
        self._engine: LlamaEngine | None = None
        self._spec: ModelSpec | None = None

    def _get_engine(self) -> LlamaEngine:
        # Created on the worker thread, on first use.
        if self._engine is None:
            install_llama_log_routing()
            self._engine = LlamaEngine(self._kv_cache_bytes)
        return self._engine

    def _load(self, spec: ModelSpec) -> ModelInfo:
        self.state_changed.emit(ModelState.LOADING)
        self._spec = None
        try:
            info = self._get_engine().load(spec.path, spec.options, model_id=spec.model_id,
                                           fallback_format=spec.fallback_format,
                                           name=spec.name)
        except EngineError:
            self.state_changed.emit(ModelState.UNLOADED)
            raise
        self._spec = spec
        self.state_changed.emit(ModelState.READY)
        self.model_loaded.emit(info)
        return info

    @Slot(object)
    def load(self, spec: ModelSpec) -> None:
        """Load ``spec`` (after unloading the current model)."""
        try:
            self._load(spec)
        except EngineError as exc:
            log.error("loading %s failed: %s", spec.path, exc)
            self.model_load_failed.emit(str(exc))
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error loading %s", spec.path)
            self.state_changed.emit(ModelState.UNLOADED)
            self.model_load_failed.emit(f"Unexpected error while loading the model: {exc}")

    @Slot()
    def unload(self) -> None:
        """Free the model."""
        if self._engine is not None:
            self._engine.unload()
        self._spec = None
        self.state_changed.emit(ModelState.UNLOADED)
        self.model_unloaded.emit()

    @Slot(object)
    def generate(self, job: _GenerateJob) -> None:
        """Run one generation job to its one final signal."""
        if job.cancel.is_set():
            self.generation_cancelled.emit(job.job_id, _empty_result(job))
            return
        engine = self._get_engine()
        try:
            if job.model is not None and job.model != self._spec:
                try:
                    self._load(job.model)
                except EngineError as exc:
                    self.model_load_failed.emit(str(exc))
                    raise
            if engine.info is None:
                raise EngineError("No model is loaded. Pick a model for this chat first.")
            self.state_changed.emit(ModelState.GENERATING)
            self.generation_started.emit(job.job_id)
            batcher = _TextBatcher(lambda text: self.token_batch_ready.emit(job.job_id, text))
            info = engine.info
            result = engine.generate(job.request, batcher.add, job.cancel)
            batcher.flush()
            if engine.info is not info:  # its chat template broke and was replaced
                self.model_info_changed.emit(engine.info)
        except EngineError as exc:
            log.error("generation %d failed: %s", job.job_id, exc)
            self._settle()
            self.generation_failed.emit(job.job_id, str(exc))
            return
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error in generation %d", job.job_id)
            self._settle()
            self.generation_failed.emit(job.job_id, f"Unexpected error while generating: {exc}")
            return
        self._settle()
        if result.cancelled:
            self.generation_cancelled.emit(job.job_id, result)
        else:
            self.generation_finished.emit(job.job_id, result)

    def _settle(self) -> None:
        loaded = self._engine is not None and self._engine.info is not None
        self.state_changed.emit(ModelState.READY if loaded else ModelState.UNLOADED)

    @Slot()
    def shutdown(self) -> None:
        """Free the model before the thread ends."""
        if self._engine is not None:
            self._engine.unload()
            self._engine = None


class _TextBatcher:
    """Collects streamed text and hands it on at most every BATCH_INTERVAL_S, so the
    GUI sees a few dozen updates a second whatever the token rate."""

    def __init__(self, emit: object) -> None:
        self._emit = emit
        self._parts: list[str] = []
        self._last = 0.0

    def add(self, text: str) -> None:
        self._parts.append(text)
        now = time.monotonic()
        if now - self._last >= BATCH_INTERVAL_S:
            self._last = now
            self.flush()

    def flush(self) -> None:
        if self._parts:
            text = "".join(self._parts)
            self._parts.clear()
            self._emit(text)  # type: ignore[operator]


def _empty_result(job: _GenerateJob) -> GenerationResult:
    model_id = job.model.model_id if job.model else ""
    return GenerationResult(text="", model_id=model_id,
                            stats=MessageStats(finish_reason=FinishReason.STOPPED))


class InferenceService(QObject):
    """The GUI thread's handle on the inference worker.

    Signals:
        state_changed(str): a ModelState value.
        model_loaded(ModelInfo): a load finished.
        model_info_changed(ModelInfo): the loaded model's chat template failed while
            rendering and was replaced by its fallback (``template_warning`` says why).
        model_load_failed(str): a load failed; the reason is readable.
        model_unloaded(): the model was freed.
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
    generation_started = Signal(int)
    token_batch_ready = Signal(int, str)
    generation_finished = Signal(int, object)
    generation_cancelled = Signal(int, object)
    generation_failed = Signal(int, str)

    _request_load = Signal(object)
    _request_unload = Signal()
    _request_generate = Signal(object)

    def __init__(self, parent: QObject | None = None,
                 kv_cache_bytes: int = 256 * 1024 * 1024) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._cancels: dict[int, threading.Event] = {}
        self._current: int | None = None
        self.state = ModelState.UNLOADED
        self.model_info: ModelInfo | None = None
        self._thread = QThread()
        self._thread.setObjectName("inference")
        self._worker = _InferenceWorker(kv_cache_bytes)
        self._worker.moveToThread(self._thread)
        self._thread.finished.connect(self._worker.deleteLater)
        self._request_load.connect(self._worker.load)
        self._request_unload.connect(self._worker.unload)
        self._request_generate.connect(self._worker.generate)
        w = self._worker
        w.state_changed.connect(self._on_state_changed)
        w.model_loaded.connect(self._on_model_loaded)
        w.model_info_changed.connect(self._on_model_info_changed)
        w.model_load_failed.connect(self.model_load_failed)
        w.model_unloaded.connect(self._on_model_unloaded)
        w.generation_started.connect(self._on_started)
        w.token_batch_ready.connect(self.token_batch_ready)
        w.generation_finished.connect(self._on_finished)
        w.generation_cancelled.connect(self._on_cancelled)
        w.generation_failed.connect(self._on_failed)
        self._thread.start()

    # -- requests --------------------------------------------------------------------
    def load_model(self, spec: ModelSpec) -> None:
        """Load a model (the current one is unloaded first)."""
        self.state = ModelState.LOADING
        self.state_changed.emit(self.state)
        self._request_load.emit(spec)

    def unload_model(self) -> None:
        """Free the current model."""
        self._request_unload.emit()

    def generate(self, request: GenerationRequest, model: ModelSpec | None = None) -> int:
        """Queue a generation; returns its job id. With ``model``, the worker makes sure
        that model is loaded first (switching models mid-chat)."""
        job_id = next(self._ids)
        cancel = threading.Event()
        self._cancels[job_id] = cancel
        self._request_generate.emit(_GenerateJob(job_id, request, model, cancel))
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Stop a job (default: the one running). Returns at once; the job ends with
        ``generation_cancelled``. Queued jobs are cancelled before they start."""
        target = self._current if job_id is None else job_id
        event = self._cancels.get(target) if target is not None else None
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        """Stop the running job and every queued one."""
        for event in self._cancels.values():
            event.set()

    @property
    def busy(self) -> bool:
        """Whether any job is queued or running."""
        return bool(self._cancels)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel everything, free the model and stop the thread."""
        if not self._thread.isRunning():
            return
        self.cancel_all()
        from PySide6.QtCore import QMetaObject

        QMetaObject.invokeMethod(self._worker, "shutdown",
                                 Qt.ConnectionType.BlockingQueuedConnection)
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.error("the inference thread did not stop within %d ms", timeout_ms)

    # -- worker results (GUI thread) ---------------------------------------------------
    @Slot(str)
    def _on_state_changed(self, state: str) -> None:
        self.state = ModelState(state)
        self.state_changed.emit(state)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info
        self.model_loaded.emit(info)

    @Slot(object)
    def _on_model_info_changed(self, info: ModelInfo) -> None:
        self.model_info = info
        self.model_info_changed.emit(info)

    @Slot()
    def _on_model_unloaded(self) -> None:
        self.model_info = None
        self.model_unloaded.emit()

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        self._current = job_id
        self.generation_started.emit(job_id)

    def _end(self, job_id: int) -> None:
        self._cancels.pop(job_id, None)
        if self._current == job_id:
            self._current = None

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: GenerationResult) -> None:
        self._end(job_id)
        self.generation_finished.emit(job_id, result)

    @Slot(int, object)
    def _on_cancelled(self, job_id: int, result: GenerationResult) -> None:
        self._end(job_id)
        self.generation_cancelled.emit(job_id, result)

    @Slot(int, str)
    def _on_failed(self, job_id: int, reason: str) -> None:
        self._end(job_id)
        self.generation_failed.emit(job_id, reason)


def with_options(spec: ModelSpec, **changes: object) -> ModelSpec:
    """A copy of ``spec`` with some load options changed."""
    return replace(spec, options=replace(spec.options, **changes))  # type: ignore[arg-type]
