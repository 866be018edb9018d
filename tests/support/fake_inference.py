"""FakeInferenceService: stands in for llama.cpp in tests of UI behaviour only.

It has the public surface of ``llamadesk.services.inference.InferenceService`` (the
``InferenceApi`` protocol) and keeps its promises: requests run one after another in
the order they were made (loads and generations alike), replies stream in batches from
a QTimer on the GUI thread, a cancel stops a reply between batches and keeps its text,
and every job ends with one final signal, ``generation_ended`` (a ``JobEnd``), its
last. What it does not do is read a model: replies are scripted text. Tests that must
prove the real path (a reply from the model stored, stop, a model switch, a broken model
file, a restart) use the real service.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from llamadesk.core.conversation import FinishReason, MessageStats
from llamadesk.services.engine import (
    GenerationRequest,
    GenerationResult,
    ModelInfo,
)
from llamadesk.services.engine_errors import EngineError, ModelLoadError
from llamadesk.services.inference import InferenceSignals, ModelSpec, ModelState
from llamadesk.services.jobs import JobEnd

#: Between two streamed batches (and before a load completes).
TICK_MS = 2
DEFAULT_WORDS = 12
#: Pretend decode speed, shown as the reply's tokens/s.
FAKE_TOKENS_PER_S = 123.0


@dataclass(frozen=True)
class FakeReply:
    """One scripted reply: ``text`` streams ``words_per_batch`` words at a time; with
    ``fail`` the job fails with that reason once the text has streamed."""

    text: str
    fail: str | None = None
    words_per_batch: int = 2

    @classmethod
    def long(cls, words: int = 2000) -> FakeReply:
        """A reply long enough to stop half-way."""
        return cls(" ".join(f"word{i}" for i in range(words)))


@dataclass
class _Job:
    job_id: int
    request: GenerationRequest
    model: ModelSpec | None
    reply: FakeReply
    cancelled: bool = False
    words: list[str] = field(default_factory=list)
    sent: int = 0


class FakeInferenceService(InferenceSignals):
    """A scripted stand-in for InferenceService, for tests of UI behaviour only.

    Script replies with ``script()`` (used in order; unscripted jobs get a short
    numbered reply), make a model fail to load with ``fail_loading()``. ``requests``
    and ``loads`` record what was asked, in order.

    Signals: InferenceService's own (``InferenceSignals``), inherited, so a signal added
    to the real service is there too.
    """

    def __init__(self, parent: QObject | None = None, tick_ms: int = TICK_MS) -> None:
        super().__init__(parent)
        self.state = ModelState.UNLOADED
        self.model_info: ModelInfo | None = None
        self.requests: list[tuple[GenerationRequest, ModelSpec | None]] = []
        self.loads: list[ModelSpec] = []
        self.forgotten: frozenset[int] = frozenset()  # chats forget_chats was told of
        self._replies: deque[FakeReply] = deque()
        self._load_failures: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._work: deque[ModelSpec | _Job] = deque()
        self._running: _Job | None = None
        self._spec: ModelSpec | None = None
        self._stopped = False
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)

    # -- scripting ------------------------------------------------------------------------
    def script(self, *replies: FakeReply | str) -> None:
        """Queue the next replies (plain strings stream two words at a time)."""
        self._replies.extend(r if isinstance(r, FakeReply) else FakeReply(r) for r in replies)

    def fail_loading(self, model_id: str, reason: str) -> None:
        """Make every load of ``model_id`` fail with ``reason``."""
        self._load_failures[model_id] = reason

    # -- the InferenceService surface ----------------------------------------------------------
    def prepare(self) -> None:
        """Nothing to import: ``engine_ready`` on the next turn of the event loop."""
        QTimer.singleShot(0, self.engine_ready.emit)

    def forget_chats(self, conversation_ids: frozenset[int]) -> None:
        self.forgotten |= conversation_ids

    def load_model(self, spec: ModelSpec) -> None:
        """Load a model (after the work queued before it)."""
        self._set_state(ModelState.LOADING)
        self._queue(spec)

    def generate(self, request: GenerationRequest, model: ModelSpec | None = None) -> int:
        """Queue a generation; returns its job id."""
        job_id = next(self._ids)
        self.requests.append((request, model))
        reply = (self._replies.popleft() if self._replies
                 else FakeReply(f"Fake reply {job_id}: " + " ".join(["words"] * DEFAULT_WORDS)))
        self._queue(_Job(job_id, request, model, reply, words=reply.text.split(" ")))
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Stop a job (default: the one running); it ends with generation_ended."""
        for job in self._jobs():
            if (job_id is None and job is self._running) or job.job_id == job_id:
                job.cancelled = True

    def cancel_all(self) -> None:
        """Stop the running job and every queued one."""
        for job in self._jobs():
            job.cancelled = True

    def remote_connection(self, job_id: int) -> str | None:
        """The fake writes every reply itself: none comes from a remote server."""
        return None

    @property
    def busy(self) -> bool:
        """Whether any job is queued or running."""
        return any(True for _ in self._jobs())

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel everything and stop (what is queued ends with generation_ended)."""
        self.cancel_all()
        while self._running is not None or self._work:
            self._tick()
        self._stopped = True
        self._timer.stop()

    # -- the pretend worker ---------------------------------------------------------------------
    def _jobs(self) -> list[_Job]:
        queued = [w for w in self._work if isinstance(w, _Job)]
        return ([self._running] if self._running is not None else []) + queued

    def _queue(self, work: ModelSpec | _Job) -> None:
        if self._stopped:
            raise RuntimeError("the fake inference service was shut down")
        self._work.append(work)
        if not self._timer.isActive():
            self._timer.start()

    def _set_state(self, state: ModelState) -> None:
        self.state = state
        self.state_changed.emit(state.value)

    @Slot()
    def _tick(self) -> None:
        if self._running is not None:
            self._stream(self._running)
        elif self._work:
            work = self._work.popleft()
            if isinstance(work, _Job):
                self._start(work)
            else:
                self._load(work)
        else:
            self._timer.stop()

    def _load(self, spec: ModelSpec) -> bool:
        self.loads.append(spec)
        self._set_state(ModelState.LOADING)
        reason = self._load_failures.get(spec.model_id)
        if reason is not None:
            self._spec = self.model_info = None
            self._set_state(ModelState.UNLOADED)
            self.model_load_failed.emit(reason)
            return False
        self._spec = spec
        self.model_info = fake_model_info(spec)
        self._set_state(ModelState.READY)
        self.model_loaded.emit(self.model_info)
        return True

    def _start(self, job: _Job) -> None:
        if job.cancelled:
            self._emit_end(JobEnd(job.job_id, result=self._result(job, FinishReason.STOPPED)))
            return
        if job.model is not None and job.model != self._spec and not self._load(job.model):
            self._emit_end(JobEnd(job.job_id, error=ModelLoadError(
                self._load_failures[job.model.model_id])))
            return
        if self.model_info is None:
            self._emit_end(JobEnd(job.job_id, error=EngineError(
                "No model is loaded. Pick a model for this chat first.")))
            return
        self._running = job
        self._set_state(ModelState.GENERATING)
        self.generation_started.emit(job.job_id)

    def _stream(self, job: _Job) -> None:
        limit = min(len(job.words), max(job.request.params.max_tokens, 1))
        if job.cancelled:
            self._end(job, FinishReason.STOPPED)
            return
        if job.sent >= limit:
            if job.reply.fail is not None:
                self._end(job, None)
            else:
                self._end(job, FinishReason.LENGTH if limit < len(job.words)
                          else FinishReason.STOP)
            return
        batch = job.words[job.sent:min(job.sent + job.reply.words_per_batch, limit)]
        text = (" " if job.sent else "") + " ".join(batch)
        job.sent += len(batch)
        self.token_batch_ready.emit(job.job_id, text)

    def _end(self, job: _Job, reason: FinishReason | None) -> None:
        self._running = None
        self._set_state(ModelState.READY)
        if reason is None:
            self._emit_end(JobEnd(job.job_id, error=EngineError(job.reply.fail or "")))
        else:
            self._emit_end(JobEnd(job.job_id, result=self._result(job, reason)))

    def _emit_end(self, end: JobEnd) -> None:
        self.generation_ended.emit(end.job_id, end)

    def _result(self, job: _Job, reason: FinishReason) -> GenerationResult:
        spec = job.model or self._spec
        return GenerationResult(
            text=" ".join(job.words[:job.sent]), model_id=spec.model_id if spec else "",
            stats=MessageStats(prompt_tokens=len(job.request.history), ttft_ms=1.0,
                               completion_tokens=job.sent,
                               tokens_per_s=FAKE_TOKENS_PER_S if job.sent else None,
                               finish_reason=reason))


def fake_model_info(spec: ModelSpec) -> ModelInfo:
    """What the fake says it loaded: the spec's own id, name and options."""
    return ModelInfo(
        model_id=spec.model_id, path=spec.path, name=spec.name or Path(spec.path).stem,
        architecture="llama", n_ctx=spec.options.n_ctx, n_ctx_train=spec.options.n_ctx,
        n_params=0, size_bytes=0, template_name="fake", template_warning=None,
        load_seconds=0.0, options=spec.options)
