"""``RemoteEngine``: replies written by a remote OpenAI-compatible server.

The ``ChatBackend`` twin of ``LlamaEngine``. The request becomes OpenAI ``messages``
(system prompt first) and sampling fields; the reply streams through ``on_text``; Stop
shuts the stream's socket at once. A server that fails before the first word raises
EngineError with the reason; one that dies after it leaves the partial reply, finish
reason ``interrupted`` and the reason in ``finish_detail``. Token counts come from the
server's ``usage`` (``stream_options.include_usage``); a server that sends none leaves
them unknown rather than guessed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from llamadesk.core.conversation import FinishReason, MessageStats
from llamadesk.services.backend import BackendCapabilities, RemoteTarget
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import GenerationRequest, GenerationResult
from llamadesk.services.remote import (
    StreamWatcher,
    chat_messages,
    check_connection,
    describe_error,
    error_chain,
    make_client,
    sampling_fields,
)

log = logging.getLogger(__name__)


@dataclass
class _Progress:
    parts: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    first: float | None = None
    finish: str | None = None
    usage: Any = None
    error: str | None = None
    note: str | None = None  # what the reply's header should say about how it was written


class RemoteEngine:
    """Writes replies with one model of one remote connection."""

    def __init__(self, target: RemoteTarget) -> None:
        self.target = target

    def capabilities(self) -> BackendCapabilities:
        """Text goes to the connection's URL; the server keeps no context for us."""
        return self.target.capabilities()

    def list_models(self) -> tuple[str, ...]:
        """The connection's models, as app-wide ids; EngineError says why not."""
        result = check_connection(self.target.connection, self.target.api_key(),
                                  self.target.settings)
        if not result.ok:
            raise EngineError(result.message)
        return tuple(self.target.connection.model_id(m) for m in result.models)

    def unload(self) -> None:
        """Nothing is held between replies."""

    def generate(self, request: GenerationRequest, on_text: Callable[[str], None],
                 cancel: threading.Event) -> GenerationResult:
        """Stream a reply from the server (see the module's docstring)."""
        target = self.target
        if cancel.is_set():
            return self._result(_Progress(), FinishReason.STOPPED)
        client = make_client(target.connection, target.api_key(), target.settings)
        fields, extra = sampling_fields(request.params)
        progress = _Progress()
        try:
            try:
                try:
                    stream = self._create(client, request, fields, extra)
                except openai.BadRequestError as exc:
                    refused = [name for name in extra if name in str(exc.message)]
                    if not refused:
                        raise
                    # A server that only knows OpenAI's own fields: write the reply
                    # without the others, and say so on the reply.
                    progress.note = (f"{target.connection.name} does not accept "
                                     f"{', '.join(extra)}; written without them")
                    stream = self._create(client, request, fields, {})
            except Exception as exc:  # any failure before streaming is a reason
                if cancel.is_set():
                    return self._result(progress, FinishReason.STOPPED)
                reason = describe_error(exc, target.connection).message
                log.warning("remote reply from %s failed to start: %s", target.model_id,
                            type(exc).__name__)
                raise EngineError(reason) from exc
            self._read(stream, progress, on_text, cancel)
        finally:
            client.close()
        return self._finish(progress, cancel)

    def _create(self, client: openai.OpenAI, request: GenerationRequest,
                fields: dict[str, Any], extra: dict[str, Any]) -> Any:
        # Typed loosely: the client's overloads name OpenAI's own models.
        completions: Any = client.chat.completions
        return completions.create(
            model=self.target.model, messages=chat_messages(request), stream=True,
            stream_options={"include_usage": True}, extra_body=extra or None, **fields)

    def _read(self, stream: Any, progress: _Progress, on_text: Callable[[str], None],
              cancel: threading.Event) -> None:
        watcher = StreamWatcher(stream.response, cancel)
        try:
            for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    progress.usage = chunk.usage
                for choice in (chunk.choices or [])[:1]:
                    text = getattr(choice.delta, "content", None) if choice.delta else None
                    if text:
                        if progress.first is None:
                            progress.first = time.monotonic()
                        progress.parts.append(text)
                        on_text(text)
                    if choice.finish_reason:
                        progress.finish = str(choice.finish_reason)
                if cancel.is_set():
                    break
        except Exception as exc:  # the server or the network failed mid-reply
            if not cancel.is_set():
                progress.error = self._stream_error(exc)
                log.warning("remote reply from %s broke off: %s", self.target.model_id,
                            type(exc).__name__)
        finally:
            watcher.stop()
            stream.close()

    def _stream_error(self, exc: Exception) -> str:
        where = self.target.connection.name
        chain = error_chain(exc)
        if any(isinstance(e, httpx2.TimeoutException | openai.APITimeoutError) for e in chain):
            return (f"{where} sent nothing for {self.target.settings.read_timeout_s:g} s "
                    "and the reply was cut off.")
        if any(isinstance(e, httpx2.TransportError | openai.APIConnectionError | OSError)
               for e in chain):
            return f"{where} closed the connection in the middle of the reply."
        if isinstance(exc, openai.APIError):
            return f"{where} reported an error in the middle of the reply: {exc.message}"
        return f"{where} sent a reply that could not be read ({type(exc).__name__})."

    def _finish(self, progress: _Progress, cancel: threading.Event) -> GenerationResult:
        if cancel.is_set():
            return self._result(progress, FinishReason.STOPPED)
        if progress.error is None and progress.finish is None:
            progress.error = (f"{self.target.connection.name} ended the stream before the "
                              "reply was complete.")
        if progress.error is not None:
            if not "".join(progress.parts).strip():
                raise EngineError(progress.error)
            return self._result(progress, FinishReason.INTERRUPTED, progress.error)
        reason = FinishReason.LENGTH if progress.finish == "length" else FinishReason.STOP
        return self._result(progress, reason, progress.note)

    def _result(self, progress: _Progress, reason: FinishReason,
                detail: str | None = None) -> GenerationResult:
        text = "".join(progress.parts)
        text = text.strip() if reason in (FinishReason.STOP, FinishReason.LENGTH) \
            else text.rstrip()
        usage = progress.usage
        prompt = getattr(usage, "prompt_tokens", None) if usage is not None else None
        completion = getattr(usage, "completion_tokens", None) if usage is not None else None
        ended = time.monotonic()
        ttft = (progress.first - progress.started) * 1000 if progress.first else None
        rate = (completion / (ended - progress.first)
                if completion and progress.first and ended > progress.first else None)
        stats = MessageStats(prompt_tokens=prompt, completion_tokens=completion, ttft_ms=ttft,
                             tokens_per_s=rate, finish_reason=reason, finish_detail=detail)
        return GenerationResult(text=text, model_id=self.target.model_id, stats=stats)
