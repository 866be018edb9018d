"""The inference service: one long-lived worker thread that owns the one model.

Requests are queued to the worker, so two requests run one after the other, never at
once. Every generation, local or remote, runs through ``job_runner.run_job`` and ends
with one final signal, ``generation_ended`` (its ``JobEnd``: the result or the error),
always its last; every load with exactly one of ``model_loaded`` or
``model_load_failed``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QMetaObject, QObject, Qt, Signal, Slot

# The job types and signals are defined in light modules of their own (services/jobs.py,
# engine_types.py, engine_errors.py, inference_signals.py) and re-exported here for the
# callers that name them as the service's.
from llamadesk.services.engine_errors import ModelLoadError as ModelLoadError
from llamadesk.services.engine_types import GenerationRequest, ModelInfo
from llamadesk.services.inference_signals import InferenceSignals as InferenceSignals
from llamadesk.services.job_runner import runs_remotely
from llamadesk.services.jobs import BATCH_INTERVAL_S as BATCH_INTERVAL_S
from llamadesk.services.jobs import EmbedJob, GenerateJob, JobEnd
from llamadesk.services.jobs import JobSink as JobSink
from llamadesk.services.jobs import ModelSpec as ModelSpec
from llamadesk.services.jobs import ModelState as ModelState
from llamadesk.services.worker import WorkerThread

if TYPE_CHECKING:
    from llamadesk.services.kv_persist import SavedStates

log = logging.getLogger(__name__)


class InferenceService(InferenceSignals):
    """The GUI thread's handle on the inference worker; its signals are those of
    ``InferenceSignals``, emitted by the worker."""

    _request_load = Signal(object)
    _request_generate = Signal(object)
    _request_remote = Signal(object)
    _request_embed = Signal(object)
    _request_prepare = Signal()
    _request_release_early = Signal()
    _request_forget = Signal(object)

    def __init__(self, parent: QObject | None = None,
                 kv_cache_bytes: int = 256 * 1024 * 1024,
                 saved_states: SavedStates | None = None) -> None:
        """``saved_states``: where the chat the model holds at quit is kept for the next
        launch (services/kv_persist.py); None keeps nothing beyond the process."""
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._cancels: dict[int, threading.Event] = {}
        self._remote_jobs: dict[int, str] = {}  # job id -> the connection that answers
        self._current: int | None = None
        self.state = ModelState.UNLOADED
        self.model_info: ModelInfo | None = None
        # Connected before anyone else can connect, so the service's own record is up to
        # date when other receivers see a signal.
        self.state_changed.connect(self._on_state_changed)
        self.model_loaded.connect(self._on_model_loaded)
        self.model_info_changed.connect(self._on_model_info_changed)
        self.model_unloaded.connect(self._on_model_unloaded)
        self.generation_started.connect(self._on_started)
        self.generation_ended.connect(self._on_ended)
        from llamadesk.services.inference_worker import InferenceWorker

        self._worker = InferenceWorker(self, kv_cache_bytes, saved_states)
        self._request_load.connect(self._worker.load)
        self._request_generate.connect(self._worker.generate)
        self._request_embed.connect(self._worker.embed)
        self._request_prepare.connect(self._worker.prepare)
        self._request_release_early.connect(self._worker.release_early)
        self._request_forget.connect(self._worker.forget_chats)
        self._thread = WorkerThread(self._worker, "inference")
        self._remote_thread: WorkerThread | None = None  # started by the first remote job

    # -- requests --------------------------------------------------------------------
    def prepare(self) -> None:
        """Import the engine's modules (llama.cpp, numpy: ~0.2 s of CPU) on the worker
        thread; ``engine_ready`` follows. The window asks for this after its first
        paint, and loads the model then, so start-up never waits for llama.cpp."""
        self._request_prepare.emit()

    def forget_chats(self, conversation_ids: frozenset[int]) -> None:
        """Deleted chats: their KV states leave the memory, and the state kept for the
        next launch is erased if it was one of theirs (after the job in hand)."""
        if conversation_ids:
            self._request_forget.emit(frozenset(conversation_ids))

    def load_model(self, spec: ModelSpec) -> None:
        """Load a model (the current one is unloaded first). A remote model has nothing
        to load: the local model stays as it is."""
        if runs_remotely(spec):
            # A model loaded before the window for a chat that answers remotely: freed.
            self._request_release_early.emit()
            return
        self.state = ModelState.LOADING
        self.state_changed.emit(self.state)
        self._request_load.emit(spec)

    def generate(self, request: GenerationRequest, model: ModelSpec | None = None) -> int:
        """Queue a generation; returns its job id. With ``model``, the worker makes sure
        that model is loaded first (switching models mid-chat)."""
        job_id = next(self._ids)
        cancel = threading.Event()
        self._cancels[job_id] = cancel
        job = GenerateJob(job_id, request, model, cancel)
        if runs_remotely(model):
            assert model is not None and model.connection is not None
            self._remote_jobs[job_id] = model.connection.connection.name
            self._start_remote_worker()
            self._request_remote.emit(job)
        else:
            self._request_generate.emit(job)
        return job_id

    def submit(self, request: GenerationRequest, model: ModelSpec,
               sink: JobSink) -> tuple[int, threading.Event]:
        """Queue a job from any thread (the local API's): it waits its turn with the
        window's jobs, first come first served, loads ``model`` unless a copy of it is
        loaded, and reports to ``sink`` on the inference thread as well as through the
        usual signals (without the text batches). Returns the job id and its cancel
        event, the one ``cancel`` sets. Local models only: a remote one has its own
        server."""
        if runs_remotely(model):
            raise ValueError("submit() runs local models; a remote model has its own server")
        job_id = next(self._ids)  # itertools.count: atomic under the GIL
        cancel = threading.Event()
        self._cancels[job_id] = cancel
        self._request_generate.emit(GenerateJob(job_id, request, model, cancel, sink,
                                                 reuse_loaded=True))
        return job_id, cancel

    def submit_embeddings(self, model: ModelSpec, texts: tuple[str, ...],
                          done: Callable[[object], None]) -> None:
        """Queue an embedding job from any thread (the local API's); it takes its turn
        with the chats on the inference worker. Local models only."""
        if runs_remotely(model):
            raise ValueError("a remote model embeds on its own server")
        self._request_embed.emit(EmbedJob(model, texts, done))

    def _start_remote_worker(self) -> None:
        # Its own thread, so the local model stays loaded and a local reply can run
        # beside a remote one.
        if self._remote_thread is None:
            from llamadesk.services.remote_worker import RemoteWorker

            worker = RemoteWorker(self)
            self._request_remote.connect(worker.generate)
            self._remote_thread = WorkerThread(worker, "remote")

    def cancel(self, job_id: int | None = None) -> None:
        """Stop a job (default: the one running). Returns at once; the job ends with
        ``generation_ended`` (its result stopped). Queued jobs are cancelled before they
        start."""
        target = self._current if job_id is None else job_id
        event = self._cancels.get(target) if target is not None else None
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        """Stop the running job and every queued one."""
        for event in list(self._cancels.values()):  # jobs may be submitted meanwhile
            event.set()

    def remote_connection(self, job_id: int) -> str | None:
        """The name of the connection a job's reply comes from; None for a local one."""
        return self._remote_jobs.get(job_id)

    @property
    def busy(self) -> bool:
        """Whether any job is queued or running."""
        return bool(self._cancels)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything, free the model and stop the threads, within ``timeout_ms``
        each. Returns whether they stopped: a slot still running then (a model load,
        which llama.cpp cannot interrupt) is abandoned, and the process can still exit
        (see ``services/worker.py``)."""
        if not self._thread.running:
            return True
        self.cancel_all()
        # Queued, not blocking: the model is freed after the slot in progress, and only
        # as long as the bounded wait below allows; a blocking call would wait for ever.
        QMetaObject.invokeMethod(self._worker, "shutdown", Qt.ConnectionType.QueuedConnection)
        stopped = self._thread.finish(timeout_ms)
        if self._remote_thread is not None:
            stopped = self._remote_thread.stop(timeout_ms) and stopped
        return stopped

    # -- the service's own record (GUI thread) -------------------------------------------
    @Slot(str)
    def _on_state_changed(self, state: str) -> None:
        self.state = ModelState(state)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info

    @Slot(object)
    def _on_model_info_changed(self, info: ModelInfo) -> None:
        self.model_info = info

    @Slot()
    def _on_model_unloaded(self) -> None:
        self.model_info = None

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        self._current = job_id

    @Slot(int, object)
    def _on_ended(self, job_id: int, _end: JobEnd) -> None:
        self._cancels.pop(job_id, None)
        self._remote_jobs.pop(job_id, None)
        if self._current == job_id:
            self._current = None
