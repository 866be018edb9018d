"""The engine's vocabulary as plain data: what a reply is asked with and what comes back,
how a model is loaded and what it is, the local API's constraints on a reply, embeddings.

Light on purpose (no Qt, no llama.cpp, no numpy): the window, the local API, the command
line and the backend interface name these types without loading the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llamadesk.core.conversation import FinishReason, Message, MessageStats, SamplingParams

if TYPE_CHECKING:
    from llamadesk.core.prompt import ContextUse


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model."""

    n_ctx: int = 4096
    n_threads: int = 4
    n_gpu_layers: int = 0
    flash_attn: bool = False
    n_batch: int = 512
    kv_cache_type: str = "q8_0"  # or "f16"; values are quantised only with flash attention


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is."""

    model_id: str
    path: str
    name: str
    architecture: str
    n_ctx: int
    n_ctx_train: int
    n_params: int
    size_bytes: int
    template_name: str
    template_warning: str | None
    load_seconds: float
    options: LoadOptions


@dataclass(frozen=True)
class ToolChat:
    """A chat with tools (the local API's): OpenAI-shaped messages, tool calls and tool
    results included, rendered whole by the model's own template with ``tools``."""

    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()
    #: The JSON schema of the one call the reply must be (tool_choice required or named).
    required: dict[str, Any] | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text and bytes, log probability, and the alternatives."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[tuple[str, float, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class ReplyConstraints:
    """What a request through the local API adds to the window's sampling."""

    grammar: str | None = None  # GBNF the reply must follow
    stop: tuple[str, ...] = ()  # stop strings beside the chat template's own
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    raw_prompt: str | None = None  # continue this text as it is, with no chat template
    tool_chat: ToolChat | None = None  # render these messages and tools as they are
    #: With ``on_logprob``: report each token's log probability and this many of the
    #: likeliest alternatives (OpenAI's ``logprobs`` / ``top_logprobs``).
    top_logprobs: int | None = None
    on_logprob: Callable[[TokenLogprob], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GenerationRequest:
    """One reply to generate. ``conversation_key`` names the conversation so its KV
    state can be kept when the user switches chats."""

    history: tuple[Message, ...]
    system_prompt: str = ""
    params: SamplingParams = field(default_factory=SamplingParams)
    conversation_key: str | None = None
    #: The stored start of the model's memory on this branch (None: the first message).
    memory_start_id: int | None = None
    #: Called on the engine's thread once the prompt is planned, before it is read.
    on_context: Callable[[ContextUse], None] | None = field(default=None, compare=False)
    constraints: ReplyConstraints | None = None
    #: The chat's mark when its history was read (core/store_kv.py): the KV state the
    #: reply leaves may be kept across launches under it (None: never kept).
    kv_epoch: bytes | None = field(default=None, compare=False)


@dataclass(frozen=True)
class GenerationResult:
    """A finished, stopped or cut-short reply and its statistics."""

    text: str
    model_id: str
    stats: MessageStats
    dropped_messages: int = 0
    #: The context after the reply (its tokens included); None when it never started.
    context: ContextUse | None = None

    @property
    def cancelled(self) -> bool:
        """True when the user stopped it."""
        return self.stats.finish_reason == FinishReason.STOPPED


def stopped_result(model_id: str) -> GenerationResult:
    """The result of a reply stopped before its first word: no tokens, whichever stage
    (queued, the template rendering, the prompt being read) the Stop came in."""
    return GenerationResult(text="", model_id=model_id, stats=MessageStats(
        completion_tokens=0, finish_reason=FinishReason.STOPPED))


@dataclass(frozen=True)
class Embeddings:
    """Unit-length vectors, one per input, and the tokens read."""

    vectors: tuple[tuple[float, ...], ...]
    prompt_tokens: int
