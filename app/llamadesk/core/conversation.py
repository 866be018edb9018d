"""Conversations, messages and the parameters that shape a reply."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class FinishReason(StrEnum):
    """Why a reply ended. ``stopped`` means the user pressed Stop; ``interrupted`` that
    the app ended (a crash, a power cut) or a remote server stopped answering while it was
    written (``MessageStats.finish_detail`` says why). The partial text is kept."""

    STOP = "stop"
    LENGTH = "length"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"  # the app or the server ended mid-reply; text kept


@dataclass(frozen=True)
class SamplingParams:
    """Per-conversation generation settings."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    n_ctx: int = 4096
    seed: int = -1  # -1: a new random seed each reply

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SamplingParams:
        """Build from a dict, ignoring unknown keys and keeping defaults for missing
        ones (so older rows load after a field is added)."""
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def validated(self) -> SamplingParams:
        """Clamp every field into the range llama.cpp accepts."""
        return replace(
            self,
            temperature=min(max(float(self.temperature), 0.0), 5.0),
            top_p=min(max(float(self.top_p), 0.0), 1.0),
            top_k=max(int(self.top_k), 0),
            min_p=min(max(float(self.min_p), 0.0), 1.0),
            repeat_penalty=min(max(float(self.repeat_penalty), 0.0), 5.0),
            max_tokens=max(int(self.max_tokens), 1),
            n_ctx=min(max(int(self.n_ctx), 256), 1 << 20),
            seed=int(self.seed),
        )


@dataclass(frozen=True)
class MessageStats:
    """What we measured while a reply was generated."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    finish_reason: FinishReason | None = None
    #: Why an interrupted reply ended, in words (e.g. the remote server closed the stream).
    finish_detail: str | None = None


@dataclass(frozen=True)
class Message:
    """One message. ``parent_id`` links it to the message it answers or follows, so
    edits and regenerations can keep branches."""

    id: int
    conversation_id: int
    parent_id: int | None
    role: Role
    content: str
    created_at: float
    model_id: str | None = None
    stats: MessageStats = field(default_factory=MessageStats)


@dataclass(frozen=True)
class Conversation:
    """A chat: its settings and a pointer to the leaf of the branch on screen."""

    id: int
    title: str
    created_at: float
    updated_at: float
    model_id: str | None = None
    system_prompt: str = ""
    params: SamplingParams = field(default_factory=SamplingParams)
    current_leaf_id: int | None = None
    #: None for chats of the window and the CLI; "api" for one kept from the local API.
    origin: str | None = None
