"""The endpoints: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from llamadesk.api.convert import chat_request, completion_request
from llamadesk.api.documents import DocumentSearch, add_documents, sources_json
from llamadesk.api.errors import ApiError, from_engine, unknown_model, unsupported
from llamadesk.api.jobs import ClientGoneError, Event, Job, JobRunner, collect, unless_gone
from llamadesk.api.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    CompletionRequest,
    Delta,
    EmbeddingList,
    EmbeddingObject,
    EmbeddingRequest,
    EmbeddingUsage,
    ModelList,
    ModelObject,
    TextChoice,
    TextCompletion,
    TokenLogprobOut,
    TopLogprob,
    Usage,
)
from llamadesk.api.tools import read_calls
from llamadesk.core.conversation import FinishReason
from llamadesk.core.registry import ModelEntry
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import (
    Embeddings,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
)
from llamadesk.services.jobs import ModelSpec

#: At most this many texts in one embeddings request (OpenAI allows 2,048).
MAX_EMBED_INPUTS = 2048
#: Status 499 (nginx's "client closed request"): nobody reads it, the log does.
CLIENT_CLOSED = 499


@dataclass
class ApiContext:
    """What the endpoints use: the job runner, the installed models and how to load one."""

    runner: JobRunner
    models: Callable[[], list[ModelEntry]]
    #: The spec to load an installed model with; LookupError when it cannot be used.
    resolve: Callable[[str], ModelSpec]
    #: The document collections' search (``collections`` on a chat); None: there are none.
    documents: DocumentSearch | None = None


def _model_object(entry: ModelEntry) -> ModelObject:
    return ModelObject(id=entry.id, created=int(entry.added_at))


def _usage(result: GenerationResult) -> Usage:
    prompt = result.stats.prompt_tokens or 0
    completion = result.stats.completion_tokens or 0
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)


def _finish(result: GenerationResult) -> str:
    return "length" if result.stats.finish_reason == FinishReason.LENGTH else "stop"


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "?"


def _sse(model: Any, exclude: set[str] | None = None) -> dict[str, str]:
    return {"data": model.model_dump_json(exclude=exclude)}


class _Endpoints:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def entry(self, model_id: str) -> ModelEntry:
        for entry in self.ctx.models():
            if entry.id == model_id and entry.available:
                return entry
        raise unknown_model(model_id)

    def spec(self, model_id: str) -> ModelSpec:
        try:
            return self.ctx.resolve(model_id)
        except LookupError as exc:
            raise ApiError(404, str(exc), code="model_not_found", param="model") from exc

    async def start(self, request: Request, body_model: str, gen: GenerationRequest,
                    endpoint: str) -> tuple[Job, Event]:
        """Submit a job and wait for its first output, so that a failure (the model
        would not load, the prompt is too long) is still an HTTP status. The caller
        gives the output back with ``job.unread``."""
        spec = self.spec(body_model)
        job = self.ctx.runner.submit(gen, spec, _client(request), endpoint)
        first = await unless_gone(job.next_output(), request, job)
        if first[0] == "failed":
            assert isinstance(first[1], EngineError)
            raise from_engine(first[1])
        return job, first


def build_router(ctx: ApiContext) -> APIRouter:
    """The /v1 routes."""
    router = APIRouter(prefix="/v1")
    ep = _Endpoints(ctx)

    @router.get("/models")
    async def list_models() -> ModelList:
        return ModelList(data=[_model_object(e) for e in ctx.models() if e.available])

    @router.get("/models/{model_id:path}")
    async def get_model(model_id: str) -> ModelObject:
        return _model_object(ep.entry(model_id))

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        gen = chat_request(body)
        extra: dict[str, Any] = {}
        if body.collections:
            gen, passages = await add_documents(
                gen, body.collections, ctx.documents, ep.spec(body.model).options.n_ctx)
            extra["sources"] = sources_json(passages)
        created, cid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
        try:
            job, first = await ep.start(request, body.model, gen, "chat")
            job.unread(first)
            calls_wanted = _calls_wanted(body, gen)
            if body.stream:
                usage = bool(body.stream_options and body.stream_options.include_usage)
                stream = (_tool_stream(job, cid, created, body.model, usage) if calls_wanted
                          else _chat_stream(job, cid, created, body.model, usage,
                                            bool(body.logprobs)))
                return EventSourceResponse(_first_with(stream, extra), sep="\n")
            _text, result, logprobs = await unless_gone(collect(job), request, job)
        except ClientGoneError:
            return Response(status_code=CLIENT_CLOSED)
        message, finish = _reply_message(result, calls_wanted)
        return JSONResponse({**ChatCompletion(
            id=cid, created=created, model=body.model, usage=_usage(result),
            choices=[ChatChoice(message=message,
                                logprobs=_logprobs(logprobs) if body.logprobs else None,
                                finish_reason=finish)]).model_dump(), **extra})

    @router.post("/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        gen = completion_request(body)
        created, cid = int(time.time()), f"cmpl-{uuid.uuid4().hex}"
        try:
            job, first = await ep.start(request, body.model, gen, "completions")
            job.unread(first)
            if body.stream:
                usage = bool(body.stream_options and body.stream_options.include_usage)
                return EventSourceResponse(
                    _text_stream(job, cid, created, body.model, usage), sep="\n")
            text, result, _ = await unless_gone(collect(job), request, job)
        except ClientGoneError:
            return Response(status_code=CLIENT_CLOSED)
        return JSONResponse(TextCompletion(
            id=cid, created=created, model=body.model, usage=_usage(result),
            choices=[TextChoice(text=text, finish_reason=_finish(result))]).model_dump())

    @router.post("/embeddings", response_model=None)
    async def embeddings(body: EmbeddingRequest) -> Response:
        texts = _embedding_inputs(body.input)
        spec = ep.spec(body.model)
        result = await ctx.runner.embed(spec, texts)
        if isinstance(result, EngineError):
            raise from_engine(result)
        assert isinstance(result, Embeddings)
        return JSONResponse(EmbeddingList(
            model=body.model,
            data=[EmbeddingObject(index=i, embedding=_encoded(v, body.encoding_format))
                  for i, v in enumerate(result.vectors)],
            usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens,
                                 total_tokens=result.prompt_tokens)).model_dump())

    return router


async def _first_with(stream: AsyncIterator[dict[str, str]],
                      extra: dict[str, Any]) -> AsyncIterator[dict[str, str]]:
    """The stream with ``extra``'s fields added to its first chunk (the sources)."""
    first = bool(extra)
    async for event in stream:
        if first:
            event = {"data": json.dumps({**json.loads(event["data"]), **extra})}
            first = False
        yield event


async def _events(job: Job) -> AsyncIterator[Event]:
    """The job's text and log probabilities, then ("ended", result); a failure raises
    ApiError. Cancels the job when the stream is closed early."""
    try:
        while True:
            kind, payload = await job.next_output()
            if kind == "failed":
                assert isinstance(payload, EngineError)
                raise from_engine(payload)
            yield kind, payload
            if kind == "ended":
                return
    finally:
        job.cancel()  # the client left, or the server stops (no-op once it ended)


def _logprobs(entries: list[TokenLogprob]) -> ChoiceLogprobs:
    return ChoiceLogprobs(content=[
        TokenLogprobOut(token=e.token, logprob=e.logprob, bytes=list(e.bytes),
                        top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(b))
                                      for t, lp, b in e.top])
        for e in entries])


async def _chat_stream(job: Job, cid: str, created: int, model: str, include_usage: bool,
                       want_logprobs: bool) -> AsyncIterator[dict[str, str]]:
    exclude = None if include_usage else {"usage"}
    pending: list[TokenLogprob] = []  # the tokens behind the next piece of text

    def chunk(delta: Delta, finish: str | None = None) -> dict[str, str]:
        logprobs = _logprobs(pending) if want_logprobs and pending else None
        pending.clear()
        return _sse(ChatCompletionChunk(
            id=cid, created=created, model=model,
            choices=[ChunkChoice(delta=delta, logprobs=logprobs, finish_reason=finish)]),
            exclude)

    yield chunk(Delta(role="assistant", content=""))
    try:
        async for kind, payload in _events(job):
            if kind == "logprob":
                assert isinstance(payload, TokenLogprob)
                pending.append(payload)
                continue
            if kind == "text":
                yield chunk(Delta(content=str(payload)))
                continue
            assert isinstance(payload, GenerationResult)
            result = payload
            yield chunk(Delta(), _finish(result))
            if include_usage:
                yield _sse(ChatCompletionChunk(id=cid, created=created, model=model,
                                               choices=[], usage=_usage(result)))
    except ApiError as exc:
        yield {"data": json.dumps(exc.body())}
        return
    yield {"data": "[DONE]"}


def _encoded(vector: tuple[float, ...], encoding: str) -> list[float] | str:
    """A vector as OpenAI sends it: numbers, or base64 of little-endian float32."""
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)


def _embedding_inputs(given: object) -> tuple[str, ...]:
    """The texts to embed: a string or a list of strings (token arrays are refused)."""
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not texts or \
            not all(isinstance(t, str) for t in texts):
        raise unsupported("input", "input must be a string or a non-empty list of "
                          "strings; token arrays are not supported.")
    if len(texts) > MAX_EMBED_INPUTS or any(not t for t in texts):
        raise ApiError(400, f"input must hold 1 to {MAX_EMBED_INPUTS} non-empty strings.",
                       param="input")
    return tuple(texts)


def _calls_wanted(body: ChatCompletionRequest, gen: GenerationRequest) -> bool:
    """Whether the reply is read for tool calls: tools were offered and not refused."""
    return bool(gen.constraints and gen.constraints.tool_chat and body.tools) \
        and body.tool_choice != "none"


def _reply_message(result: GenerationResult, calls_wanted: bool) -> tuple[AssistantMessage,
                                                                          str]:
    """The assistant's message and finish reason: the calls it made, if it made any."""
    if calls_wanted:
        content, calls = read_calls(result.text)
        if calls:
            return AssistantMessage(content=content, tool_calls=calls), "tool_calls"
    return AssistantMessage(content=result.text), _finish(result)


async def _tool_stream(job: Job, cid: str, created: int, model: str,
                       include_usage: bool) -> AsyncIterator[dict[str, str]]:
    """A reply that may be calls is read whole (a half call is no use to a client),
    then sent as OpenAI streams it: the words, the calls with their index, the reason."""
    exclude = None if include_usage else {"usage"}

    def chunk(delta: Delta, finish: str | None = None) -> dict[str, str]:
        return _sse(ChatCompletionChunk(id=cid, created=created, model=model, choices=[
            ChunkChoice(delta=delta, finish_reason=finish)]), exclude)

    yield chunk(Delta(role="assistant", content=""))
    try:
        async for kind, payload in _events(job):
            if kind != "ended":
                continue
            assert isinstance(payload, GenerationResult)
            message, finish = _reply_message(payload, True)
            if message.content:
                yield chunk(Delta(content=message.content))
            if message.tool_calls:
                yield chunk(Delta(tool_calls=[{"index": i, **c.model_dump()}
                                              for i, c in enumerate(message.tool_calls)]))
            yield chunk(Delta(), finish)
            if include_usage:
                yield _sse(ChatCompletionChunk(id=cid, created=created, model=model,
                                               choices=[], usage=_usage(payload)))
    except ApiError as exc:
        yield {"data": json.dumps(exc.body())}
        return
    yield {"data": "[DONE]"}


async def _text_stream(job: Job, cid: str, created: int, model: str,
                       include_usage: bool) -> AsyncIterator[dict[str, str]]:
    exclude = None if include_usage else {"usage"}
    try:
        async for kind, payload in _events(job):
            result = payload if isinstance(payload, GenerationResult) else None
            if kind == "logprob":
                continue
            if result is None:
                choice = TextChoice(text=str(payload))
            else:
                choice = TextChoice(text="", finish_reason=_finish(result))
            yield _sse(TextCompletion(id=cid, created=created, model=model,
                                      choices=[choice]), exclude)
            if result is not None and include_usage:
                yield _sse(TextCompletion(id=cid, created=created, model=model, choices=[],
                                          usage=_usage(result)))
    except ApiError as exc:
        yield {"data": json.dumps(exc.body())}
        return
    yield {"data": "[DONE]"}


def mount(app: FastAPI, ctx: ApiContext) -> None:
    """Add the routes to ``app``."""
    app.include_router(build_router(ctx))
