"""The inference worker: lives on the inference thread and is the only code that
touches the engine (and the embedding context). ``InferenceService`` builds it and talks
to it with queued signals; what it emits is the service's own signals."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from llamadesk.services.engine_errors import EngineError, ModelLoadError
from llamadesk.services.engine_types import ModelInfo
from llamadesk.services.fit_check import GPU_LAYERS_AUTOMATIC, resolve_gpu_layers
from llamadesk.services.inference_signals import InferenceSignals, SignalSink
from llamadesk.services.job_runner import backend_for, run_job
from llamadesk.services.jobs import EmbedJob, GenerateJob, ModelSpec, ModelState
from llamadesk.services.resolver import serves

if TYPE_CHECKING:
    from llamadesk.services.backend import ChatBackend
    from llamadesk.services.embedder import Embedder
    from llamadesk.services.engine import LlamaEngine
    from llamadesk.services.kv_persist import SavedStates

log = logging.getLogger("llamadesk.services.inference")


class InferenceWorker(QObject):
    """Lives on the inference thread; only it touches the engine."""

    def __init__(self, out: InferenceSignals, kv_cache_bytes: int,
                 saved_states: SavedStates | None = None) -> None:
        super().__init__()
        self._out = out
        self._kv_cache_bytes = kv_cache_bytes
        self._saved_states = saved_states
        self._engine: LlamaEngine | None = None
        self._spec: ModelSpec | None = None
        self._embedder: Embedder | None = None

    @Slot()
    def prepare(self) -> None:
        """Import the engine's modules here, on the worker thread, ahead of the first
        load (a failure is left to that load to report), then say so."""
        try:
            import llamadesk.services.engine  # noqa: F401
        except ImportError as exc:
            log.warning("could not prepare the engine: %s", exc)
        self._out.engine_ready.emit()

    @Slot()
    def release_early(self) -> None:
        """Free the model loaded before the window (services/llama_early.py) unless the
        engine took it: the window's chat answers through a remote model."""
        if "llamadesk.services.llama_early" in sys.modules:  # never imported: none
            from llamadesk.services.llama_early import discard

            discard()

    @Slot(object)
    def forget_chats(self, conversation_ids: frozenset[int]) -> None:
        """Drop deleted chats' states from memory, and erase the kept state if its chat's
        mark is gone: a deleted chat's tokens do not wait for a clean quit on the disk."""
        if self._engine is not None:
            for conversation_id in conversation_ids:
                self._engine.kv_cache.drop(str(conversation_id))
        if self._saved_states is not None:
            try:
                self._saved_states.tidy()
            except Exception:  # a kept state only spares a re-read; the chat is gone
                log.exception("could not tidy the kept KV state")

    def _get_engine(self) -> LlamaEngine:
        # Created on the worker thread, on first use; llama.cpp (and numpy) are imported
        # here too, so the window's start-up never waits for them.
        if self._engine is None:
            from llamadesk.services.engine import LlamaEngine, install_llama_log_routing

            install_llama_log_routing()
            self._engine = LlamaEngine(self._kv_cache_bytes, self._saved_states)
            # The template that broke says so through the engine (one detector).
            self._engine.on_info_changed = self._out.model_info_changed.emit
        return self._engine

    def _load(self, spec: ModelSpec) -> ModelInfo:
        out = self._out
        out.state_changed.emit(ModelState.LOADING)
        had_model = self._spec is not None
        self._spec = None
        if self._embedder is not None:  # another chat model: its memory first
            self._embedder.close()
        engine = self._get_engine()
        try:
            options = spec.options
            if options.n_gpu_layers == GPU_LAYERS_AUTOMATIC:
                engine.unload()  # its GPU memory is free for the next model
                options = resolve_gpu_layers(options, spec.path)
            info = engine.load(spec.path, options, model_id=spec.model_id,
                               fallback_format=spec.fallback_format, name=spec.name)
        except BaseException:
            # The engine frees the previous model before it loads the next one.
            out.state_changed.emit(ModelState.UNLOADED)
            if had_model:
                out.model_unloaded.emit()
            raise
        self._spec = spec
        out.state_changed.emit(ModelState.READY)
        out.model_loaded.emit(info)
        return info

    @Slot(object)
    def load(self, spec: ModelSpec) -> None:
        """Load ``spec`` (after unloading the current model)."""
        try:
            self._load(spec)
        except EngineError as exc:
            log.error("loading %s failed: %s", spec.path, exc)
            self._out.model_load_failed.emit(str(exc))
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error loading %s", spec.path)
            self._out.model_load_failed.emit(f"Unexpected error while loading the model: {exc}")

    @Slot(object)
    def embed(self, job: EmbedJob) -> None:
        """Embed a job's texts (the local API's), in turn with the chats; its callback
        gets the Embeddings or the EngineError."""
        if self._embedder is None:
            from llamadesk.services.embedder import Embedder

            # On this thread: its llama.cpp workers are the chat's own (embedder.py).
            self._embedder = Embedder(on_passing_thread=False)
        try:
            result: object = self._embedder.embed(job.model.path, list(job.texts),
                                                  job.model.options.n_threads)
        except EngineError as exc:
            result = exc
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error while embedding")
            result = EngineError(f"Unexpected error while embedding: {exc}")
        job.done(result)

    @Slot(object)
    def generate(self, job: GenerateJob) -> None:
        """Run one generation job to its one final signal (``job_runner.run_job``)."""
        began = False  # stopped in the queue, nothing ran: nothing to settle

        def open_backend() -> ChatBackend:
            nonlocal began
            began = True
            return backend_for(job.model, lambda _model: self._ready_engine(job))

        def before_end() -> None:
            # A replaced chat template was announced by the engine (on_info_changed).
            if began:
                self._settle()

        run_job(job, open_backend, SignalSink(self._out, job, before_end))

    def _ready_engine(self, job: GenerateJob) -> LlamaEngine:
        """The engine with the job's model loaded (``ModelLoadError`` when it will not
        load), the state saying it is generating."""
        engine = self._get_engine()
        if self._needs_load(job):
            assert job.model is not None
            try:
                self._load(job.model)
            except EngineError as exc:
                self._out.model_load_failed.emit(str(exc))
                raise ModelLoadError(str(exc)) from exc
        if engine.info is None:
            raise EngineError("No model is loaded. Pick a model for this chat first.")
        self._out.state_changed.emit(ModelState.GENERATING)
        return engine

    def _needs_load(self, job: GenerateJob) -> bool:
        return not serves(self._spec, job.model, job.reuse_loaded)

    def _settle(self) -> None:
        loaded = self._engine is not None and self._engine.info is not None
        self._out.state_changed.emit(ModelState.READY if loaded else ModelState.UNLOADED)

    @Slot()
    def shutdown(self) -> None:
        """Keep the chat the model holds for the next launch, and free the model before
        the thread ends."""
        if self._embedder is not None:
            self._embedder.close()
        try:
            if self._engine is not None and self._engine.info is not None:
                self._engine.keep_context()
            elif self._saved_states is not None:  # no model: erase a state gone stale
                self._saved_states.tidy()
        except Exception:  # a bug must not keep the model from being freed
            log.exception("could not keep the KV state for the next launch")
        if self._engine is not None:
            self._engine.unload()
            self._engine = None
