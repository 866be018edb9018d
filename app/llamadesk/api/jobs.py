"""The bridge between the API's event loop and the inference worker.

A job is submitted with ``InferenceService.submit``: it queues with the window's jobs on
the one worker, is run by the one job runner (``services/job_runner.run_job``) and
reports through a sink that the runner calls on the worker's thread, ``ended`` exactly
once and last; the sink hands each event to the API's loop with
``call_soon_threadsafe``. Cancelling a job sets the same event as the window's Stop
button.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from starlette.requests import Request

from llamadesk.api.errors import ApiError, from_engine
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import GenerationRequest, GenerationResult, TokenLogprob
from llamadesk.services.jobs import JobEnd, JobSink, ModelSpec

T = TypeVar("T")

#: Recent requests kept for the GUI's list and for tests.
RECENT_LIMIT = 100


class Submitter(Protocol):
    """What the API needs of the inference service."""

    def submit(self, request: GenerationRequest, model: ModelSpec,
               sink: JobSink) -> tuple[int, threading.Event]:
        """Queue a job from any thread; returns its id and cancel event."""
        ...

    def submit_embeddings(self, model: ModelSpec, texts: tuple[str, ...],
                          done: Callable[[object], None]) -> None:
        """Queue an embedding job from any thread; ``done`` gets the result."""
        ...


class ClientGoneError(Exception):
    """The client closed the connection; its job was cancelled."""


@dataclass(frozen=True)
class RequestRecord:
    """One finished API request (no message text)."""

    started_at: float  # time.time()
    client: str
    endpoint: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_s: float
    status: str  # "finished", "stopped" or "failed"
    ended_monotonic: float  # when the worker let go of it (time.monotonic())
    ttft_ms: float | None = None  # the engine's own time to first token
    tokens_per_s: float | None = None  # the engine's own decode speed


Event = tuple[str, object]  # ("started"|"text"|"logprob"|"ended"|"failed", payload)


class Job(JobSink):
    """One submitted generation: its events, in order, on the API's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: str, endpoint: str,
                 model: str, on_done: Callable[[Job, Event], None]) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._on_done = on_done
        self.cancel_event = threading.Event()
        self.client, self.endpoint, self.model = client, endpoint, model
        self.started_at = time.time()
        self.ended_monotonic = 0.0
        self.request: GenerationRequest | None = None  # what was asked (for ChatHook)
        self._unread: Event | None = None

    # -- the sink: called on the inference thread -----------------------------------
    def started(self) -> None:
        self._put(("started", None))

    def text(self, piece: str) -> None:
        self._put(("text", piece))

    def ended(self, end: JobEnd) -> None:
        self.ended_monotonic = time.monotonic()
        event: Event = ("failed", end.error) if end.error is not None else ("ended", end.result)
        self._put(event, final=True)

    def logprob(self, entry: TokenLogprob) -> None:
        """A generated token's log probability (before its text)."""
        self._put(("logprob", entry))

    def _put(self, event: Event, final: bool = False) -> None:
        # RuntimeError: the server stopped and its loop is closed; nobody is listening.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, event, final)

    def _deliver(self, event: Event, final: bool) -> None:
        self._queue.put_nowait(event)
        if final:
            self._on_done(self, event)

    # -- the API's side: on its loop -------------------------------------------------------
    async def next_output(self) -> Event:
        """The next text, or the end: "started" events are skipped."""
        if self._unread is not None:
            event, self._unread = self._unread, None
            return event
        while True:
            event = await self._queue.get()
            if event[0] != "started":
                return event

    def unread(self, event: Event) -> None:
        """Give ``event`` back: the next ``next_output`` returns it again."""
        self._unread = event

    def cancel(self) -> None:
        """Stop the job (queued or running); it ends with its partial text."""
        self.cancel_event.set()


#: Told of every chat completion that ended with a reply (on the API's loop thread).
ChatHook = Callable[[GenerationRequest, GenerationResult, str], None]


class JobRunner:
    """Submits jobs, refuses more than ``limit`` at once (429), keeps recent records."""

    def __init__(self, service: Submitter, limit: int = 64,
                 on_chat: ChatHook | None = None) -> None:
        self._service = service
        self.limit = limit
        self._on_chat = on_chat
        self.pending = 0  # submitted and not yet ended; only the loop's thread changes it
        self.recent: deque[RequestRecord] = deque(maxlen=RECENT_LIMIT)
        self._jobs: set[Job] = set()

    def submit(self, request: GenerationRequest, spec: ModelSpec, client: str,
               endpoint: str) -> Job:
        """Queue ``request`` on the inference worker (call on the API's loop)."""
        if self.pending >= self.limit:
            raise ApiError(429, f"{self.pending} requests are already running or queued; "
                           "try again when one has finished.", code="rate_limit_exceeded")
        job = Job(asyncio.get_running_loop(), client, endpoint, spec.model_id, self._done)
        job.request = request
        constraints = request.constraints
        if constraints is not None and constraints.top_logprobs is not None:
            request = replace(request, constraints=replace(constraints,
                                                           on_logprob=job.logprob))
        self.pending += 1
        self._jobs.add(job)
        _job_id, job.cancel_event = self._service.submit(request, spec, job)
        return job

    async def embed(self, spec: ModelSpec, texts: tuple[str, ...]) -> object:
        """Embed ``texts`` on the inference worker, in turn with the chats; the
        Embeddings, or the EngineError that stopped them (call on the API's loop)."""
        if self.pending >= self.limit:
            raise ApiError(429, f"{self.pending} requests are already running or queued; "
                           "try again when one has finished.", code="rate_limit_exceeded")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[object] = loop.create_future()

        def settle(result: object) -> None:  # on the loop
            if not answer.done():
                answer.set_result(result)

        def done(result: object) -> None:  # on the inference thread
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(settle, result)

        self.pending += 1
        try:
            self._service.submit_embeddings(spec, texts, done)
            return await answer
        finally:
            self.pending -= 1

    def cancel_all(self) -> None:
        """Stop every job of the API (the server is stopping; safe from any thread)."""
        for job in list(self._jobs):
            job.cancel()

    def forget_jobs(self) -> None:
        """The server's loop has ended: its jobs can no longer report here."""
        self._jobs.clear()
        self.pending = 0

    def _done(self, job: Job, event: Event) -> None:
        self.pending -= 1
        self._jobs.discard(job)
        kind, payload = event
        result = payload if isinstance(payload, GenerationResult) else None
        status = "failed" if kind == "failed" else (
            "stopped" if result is not None and result.cancelled else "finished")
        stats = result.stats if result is not None else None
        if self._on_chat is not None and result is not None and job.endpoint == "chat" \
                and job.request is not None:
            self._on_chat(job.request, result, job.model)
        self.recent.append(RequestRecord(
            started_at=job.started_at, client=job.client, endpoint=job.endpoint,
            model=job.model, prompt_tokens=stats.prompt_tokens if stats else None,
            completion_tokens=stats.completion_tokens if stats else None,
            duration_s=time.time() - job.started_at, status=status,
            ended_monotonic=job.ended_monotonic,
            ttft_ms=stats.ttft_ms if stats else None,
            tokens_per_s=stats.tokens_per_s if stats else None))


async def until_disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body was read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_gone(awaitable: Awaitable[T], request: Request, job: Job) -> T:
    """Await ``awaitable``; if the client leaves first, cancel ``job`` and raise
    ClientGoneError. Cancelled itself (the server stops): cancel the job too."""
    task = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(until_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        job.cancel()
        raise
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if task in done:
        return task.result()
    job.cancel()
    raise ClientGoneError


async def collect(job: Job) -> tuple[str, GenerationResult, list[TokenLogprob]]:
    """Every piece of text, the result and the tokens' log probabilities (when asked
    for), once the job ends. Raises ApiError."""
    pieces: list[str] = []
    logprobs: list[TokenLogprob] = []
    while True:
        kind, payload = await job.next_output()
        if kind == "text":
            pieces.append(str(payload))
        elif kind == "logprob":
            assert isinstance(payload, TokenLogprob)
            logprobs.append(payload)
        elif kind == "failed":
            assert isinstance(payload, EngineError)
            raise from_engine(payload)
        else:
            assert isinstance(payload, GenerationResult)
            return "".join(pieces), payload, logprobs
