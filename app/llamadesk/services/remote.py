"""Remote OpenAI-compatible servers through the official ``openai`` client.

``check_connection`` asks a server for its models (``GET /models``) and says what it
found or exactly why not. ``RemoteEngine`` writes replies: streamed, stopped at once
when the cancel event is set (its socket is shut down, so a blocked read returns), with
the token counts of the server's ``usage``. Requests are retried only before a reply
has started streaming (the client's own retries end when the answer's headers arrive).
No message text is logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx2
import openai

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import SamplingParams
from llamadesk.core.prompt import model_turns
from llamadesk.services.engine_types import GenerationRequest

log = logging.getLogger(__name__)

#: How often the stream's watcher looks at the cancel event (seconds).
CANCEL_POLL_S = 0.02


class CheckStatus(StrEnum):
    """What a connection check found."""

    OK = "ok"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"  # no such host, no route
    TIMEOUT = "timeout"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"  # 401 / 403
    NOT_FOUND = "not-found"  # 404: no OpenAI-compatible API at that address
    NOT_COMPATIBLE = "not-compatible"  # an answer that is not an OpenAI model list
    HTTP_ERROR = "http-error"  # any other status


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a connection check: the models found, or why there are none."""

    status: CheckStatus
    message: str
    models: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the server answered with a model list."""
        return self.status == CheckStatus.OK


def make_client(connection: Connection, api_key: str | None,
            settings: RemoteSettings) -> openai.OpenAI:
    # Never the OPENAI_API_KEY of the environment: a key for one service must not go to
    # another. A server without keys gets a placeholder the client insists on.
    timeout = httpx2.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    return openai.OpenAI(api_key=api_key or "none", base_url=connection.base_url,
                         timeout=timeout, max_retries=settings.max_retries)


def error_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_error(exc: BaseException, connection: Connection) -> CheckResult:
    """A failed request to ``connection`` as a status and a sentence a user can act on."""
    where = f"{connection.name} ({connection.base_url})"
    chain = error_chain(exc)
    if isinstance(exc, openai.APITimeoutError) or any(
            isinstance(e, httpx2.TimeoutException | TimeoutError) for e in chain):
        return CheckResult(CheckStatus.TIMEOUT, f"{where} did not answer in time. Check that "
                           "the server is running, or raise the timeouts in Preferences.")
    if any(isinstance(e, ssl.SSLError) for e in chain) or "SSL" in str(exc):
        return CheckResult(CheckStatus.TLS, f"The secure connection to {where} failed "
                           f"({_first_line(chain)}). Check the certificate, or the scheme "
                           "(http:// or https://).")
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in \
            " ".join(str(e) for e in chain).lower():
        return CheckResult(CheckStatus.REFUSED, f"{where} refused the connection: nothing "
                           "listens at that address and port.")
    if any(isinstance(e, socket.gaierror) for e in chain):
        return CheckResult(CheckStatus.UNREACHABLE, f"The host of {where} is unknown.")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return CheckResult(CheckStatus.UNAUTHORIZED, f"{where} refused the API key (HTTP "
                           f"{exc.status_code}). Set the right key for this connection.")
    if isinstance(exc, openai.NotFoundError):
        return CheckResult(CheckStatus.NOT_FOUND, f"{where} answered 404 Not Found: "
                           f"{_server_message(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return CheckResult(CheckStatus.HTTP_ERROR, f"{where} answered HTTP {exc.status_code}: "
                           f"{_server_message(exc)}")
    if isinstance(exc, openai.APIConnectionError | httpx2.HTTPError | OSError):
        return CheckResult(CheckStatus.UNREACHABLE,
                           f"Cannot reach {where}: {_first_line(chain)}.")
    return CheckResult(CheckStatus.NOT_COMPATIBLE, f"{where} did not give an OpenAI-compatible "
                       f"answer ({type(exc).__name__}).")


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(message, str) and message:
            return message[:300]
    return str(exc.message)[:300]


def _first_line(chain: list[BaseException]) -> str:
    deepest = chain[-1]
    text = str(deepest).strip().splitlines()
    return text[0][:200] if text else type(deepest).__name__


def _parse_models(body: bytes) -> tuple[str, ...] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    if not all(isinstance(i, str) and i for i in ids):
        return None
    return tuple(str(i) for i in ids)


def check_connection(connection: Connection, api_key: str | None,
                     settings: RemoteSettings | None = None) -> CheckResult:
    """Ask ``connection`` for its models (``GET <base_url>/models``)."""
    settings = settings or RemoteSettings()
    client = make_client(connection, api_key, settings)
    try:
        raw = client.models.with_raw_response.list()
        body = raw.http_response.read()
    except Exception as exc:  # every failure becomes a reason, none escapes as a crash
        result = describe_error(exc, connection)
        log.info("check of connection %s: %s", connection.name, result.status)
        return result
    finally:
        client.close()
    models = _parse_models(body)
    if models is None:
        return CheckResult(CheckStatus.NOT_COMPATIBLE, f"{connection.name} "
                           f"({connection.base_url}) answered, but not with an OpenAI-"
                           "compatible model list. Check the address: it usually ends in /v1.")
    log.info("check of connection %s: %d models", connection.name, len(models))
    found = ", ".join(models[:5]) + (" …" if len(models) > 5 else "")
    return CheckResult(CheckStatus.OK, f"{connection.name} answers with {len(models)} "
                       f"model{'s' if len(models) != 1 else ''}: {found or 'none'}.", models)


def chat_messages(request: GenerationRequest) -> list[dict[str, str]]:
    """The OpenAI ``messages`` for ``request``: the system prompt, then the turns from
    where the model's memory begins on this branch."""
    history = list(request.history)
    if request.memory_start_id is not None:
        starts = [i for i, m in enumerate(history) if m.id == request.memory_start_id]
        if starts:
            history = history[starts[0]:]
    messages = [{"role": "system", "content": request.system_prompt}] \
        if request.system_prompt.strip() else []
    messages += [{"role": t["role"], "content": t["content"]} for t in model_turns(history)]
    return messages


def sampling_fields(params: SamplingParams) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAI fields for ``params``, and the extra ones (``top_k``, ``min_p``,
    ``repeat_penalty``) that vLLM, llama.cpp's server and Ollama accept beside them."""
    p = params.validated()
    fields: dict[str, Any] = {"temperature": p.temperature, "top_p": p.top_p,
                              "max_tokens": p.max_tokens}
    if p.seed >= 0:
        fields["seed"] = p.seed
    return fields, {"top_k": p.top_k, "min_p": p.min_p, "repeat_penalty": p.repeat_penalty}


class StreamWatcher:
    """Shuts the stream's socket down the moment ``cancel`` is set, so a read that waits
    on a slow server returns at once instead of at the next token."""

    def __init__(self, response: Any, cancel: threading.Event) -> None:
        self._response = response
        self._cancel = cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="remote-stop", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(CANCEL_POLL_S):
                self._abort()
                return

    def _abort(self) -> None:
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed by the server
                sock.shutdown(socket.SHUT_RDWR)
            # The reader's blocked read now returns, and it closes the response itself:
            # httpx's response is not made to be closed by one thread mid-read in another.
            return
        self._response.close()  # no socket to shut: the close is the only way to wake it

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
