"""OpenAI requests turned into the engine's own requests: the same sampling fields, chat
template, stop strings and context budgeting as the window's, plus the API's
constraints."""

from __future__ import annotations

from llamadesk.api.errors import ApiError, unsupported
from llamadesk.api.schemas import (
    ChatCompletionRequest,
    ChatMessageIn,
    CompletionRequest,
    ResponseFormat,
)
from llamadesk.api.tools import tool_chat
from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.engine_types import GenerationRequest, ReplyConstraints
from llamadesk.services.json_grammar import json_object_grammar, json_schema_grammar

#: Without max_tokens a reply may run until the context is full, as with OpenAI.
UNLIMITED_TOKENS = 1 << 20
#: The model's memory of API requests is kept under this key, apart from the chats'.
CONVERSATION_KEY = "api"
_SEED_MASK = 0x7FFF_FFFF


def sampling(body: ChatCompletionRequest | CompletionRequest,
             max_tokens: int | None) -> SamplingParams:
    """OpenAI's sampling fields, with OpenAI's defaults; the samplers OpenAI does not
    have (top-k, min-p, repeat penalty) are off."""
    if body.n not in (None, 1):
        raise unsupported("n", "Only n=1 is supported: one reply per request.")
    if body.logit_bias:
        raise unsupported("logit_bias", "logit_bias is not supported.")
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=0, min_p=0.0, repeat_penalty=1.0,
        max_tokens=max_tokens or UNLIMITED_TOKENS,
        seed=-1 if body.seed is None else body.seed & _SEED_MASK,
    )


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if len(stops) > 4:
        raise unsupported("stop", "At most 4 stop sequences are allowed.")
    return tuple(s for s in stops if s)


def _grammar(response_format: ResponseFormat | None) -> str | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return json_object_grammar()
    spec = response_format.json_schema
    if spec is None or spec.json_schema is None:
        raise ApiError(400, "response_format json_schema needs json_schema.schema.",
                       param="response_format")
    try:
        return json_schema_grammar(spec.json_schema)
    except ValueError as exc:
        raise ApiError(400, f"response_format: {exc}", param="response_format") from exc


def _text(message: ChatMessageIn, index: int) -> str:
    content = message.content
    if content is None:
        raise ApiError(400, f"messages[{index}] has no content.",
                       param=f"messages[{index}].content")
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise unsupported(f"messages[{index}].content",
                              f"Only text content is supported, not {part.type!r}.")
        texts.append(part.text)
    return "".join(texts)


def chat_request(body: ChatCompletionRequest) -> GenerationRequest:
    """The engine's request for a chat completion. Raises ApiError for what it cannot
    honour."""
    with_tools = bool(body.tools or body.functions) or any(
        m.role in ("tool", "function") or m.tool_calls for m in body.messages)
    if body.top_logprobs is not None and not body.logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true.", param="top_logprobs")
    system: list[str] = []
    history: list[Message] = []
    for index, message in enumerate(body.messages):
        if message.role in ("tool", "function") or message.tool_calls:
            continue  # in the tool chat below; kept conversations hold the words only
        text = _text(message, index)
        if message.role in ("system", "developer"):
            system.append(text)
            continue
        role = Role.USER if message.role == "user" else Role.ASSISTANT
        history.append(Message(id=len(history) + 1, conversation_id=0,
                               parent_id=len(history) or None, role=role, content=text,
                               created_at=0.0))
    if not any(m.role == Role.USER for m in history):
        raise ApiError(400, "messages must include at least one user message.",
                       param="messages")
    chat = tool_chat(body, _text) if with_tools else None
    if chat is not None and chat.required is not None and body.response_format is not None \
            and body.response_format.type != "text":
        raise ApiError(400, "A required tool call and a response_format cannot be asked "
                       "for together.", param="response_format")
    constraints = ReplyConstraints(
        tool_chat=chat,
        grammar=_grammar(body.response_format), stop=_stops(body.stop),
        frequency_penalty=body.frequency_penalty or 0.0,
        presence_penalty=body.presence_penalty or 0.0,
        top_logprobs=(body.top_logprobs or 0) if body.logprobs else None)
    return GenerationRequest(
        history=tuple(history), system_prompt="\n\n".join(system),
        params=sampling(body, body.max_completion_tokens or body.max_tokens),
        conversation_key=CONVERSATION_KEY, constraints=constraints)


def completion_request(body: CompletionRequest) -> GenerationRequest:
    """The engine's request for a text completion: the prompt as it is, no template."""
    if body.echo:
        raise unsupported("echo", "echo is not supported.")
    if body.suffix:
        raise unsupported("suffix", "suffix is not supported.")
    if body.best_of not in (None, 1):
        raise unsupported("best_of", "Only best_of=1 is supported.")
    if body.logprobs:
        raise unsupported("logprobs", "logprobs are not supported.")
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise unsupported("prompt", "Only one prompt per request is supported.")
        prompt = prompt[0]
    constraints = ReplyConstraints(
        stop=_stops(body.stop), frequency_penalty=body.frequency_penalty or 0.0,
        presence_penalty=body.presence_penalty or 0.0, raw_prompt=prompt)
    return GenerationRequest(history=(), params=sampling(body, body.max_tokens or 16),
                             conversation_key=CONVERSATION_KEY, constraints=constraints)
