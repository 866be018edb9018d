"""Constraints a request through the local API may put on a reply (docs/api.md): a
grammar, extra stop strings, OpenAI's penalties, or a raw prompt with no chat template.

The window sends none of them; the engine applies them in the same token loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

from llamadesk.services import llama_internals as internals
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.llama_internals import strict_json_strings

if TYPE_CHECKING:
    from llama_cpp import Llama


@dataclass(frozen=True)
class ToolChat:
    """A chat with tools (the local API's): OpenAI-shaped messages, tool calls and tool
    results included, rendered whole by the model's own template with ``tools``."""

    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()
    #: The JSON schema of the one call the reply must be (tool_choice required or named).
    required: dict[str, Any] | None = None


def tool_call_grammar(schema: dict[str, Any], hermes: bool) -> str:
    """GBNF for one call matching ``schema``: bare JSON, or (``hermes``) inside the
    ``<tool_call>`` markers that Hermes-style templates teach their models."""
    call = json_schema_grammar(schema)
    if not hermes:
        return call
    return call.replace("root ::=", "call ::=", 1) + \
        '\nroot ::= "<tool_call>\\n" call "\\n</tool_call>"\n'


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
class TokenLogprob:
    """One generated token: its text and bytes, log probability, and the alternatives."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[tuple[str, float, tuple[int, ...]], ...] = ()


def token_logprob(logits: npt.NDArray[np.float32], token: int, top_n: int,
                  piece: Callable[[int], bytes]) -> TokenLogprob:
    """The log-softmax of ``logits`` at ``token``, and the ``top_n`` likeliest tokens."""
    values = logits.astype(np.float64)
    peak = float(values.max())
    log_total = peak + float(np.log(np.exp(values - peak).sum()))

    def entry(t: int) -> tuple[str, float, tuple[int, ...]]:
        raw = piece(t)
        return raw.decode("utf-8", errors="replace"), float(values[t]) - log_total, tuple(raw)

    top: tuple[tuple[str, float, tuple[int, ...]], ...] = ()
    if top_n > 0:
        best = np.argpartition(-values, top_n)[:top_n]
        top = tuple(entry(int(t)) for t in best[np.argsort(-values[best])])
    text, logprob, raw = entry(token)
    return TokenLogprob(text, logprob, raw, top)


def json_object_grammar() -> str:
    """GBNF for a JSON object. Built by the schema converter rather than llama.cpp's
    json.gbnf, whose unbounded whitespace lets a small model pad until its token limit."""
    return json_schema_grammar({"type": "object"})


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """GBNF for the JSON a schema allows (llama.cpp's own converter). Raises ValueError
    with a readable reason for a schema it cannot convert."""
    try:
        gbnf = str(json_schema_to_gbnf(json.dumps(schema)))
    except (ValueError, KeyError, TypeError, RecursionError, NotImplementedError) as exc:
        raise ValueError(f"the JSON schema cannot be turned into a grammar: {exc}") from exc
    return strict_json_strings(gbnf)


def compile_grammar(gbnf: str | None) -> LlamaGrammar | None:
    """The compiled grammar, or None. Raises ValueError for text that is not GBNF."""
    if gbnf is None:
        return None
    try:
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"the reply's grammar is not valid GBNF ({exc})") from exc


def checked_grammar(llm: Llama, gbnf: str | None) -> LlamaGrammar | None:
    """The reply's grammar, compiled and checked against ``llm``. Raises EngineError when
    llama.cpp cannot parse it (llama-cpp-python would add a NULL sampler and crash)."""
    try:
        grammar = compile_grammar(gbnf)
    except ValueError as exc:
        raise EngineError(str(exc)) from exc
    if grammar is not None and not internals.grammar_parses(llm, grammar):
        raise EngineError("The reply's grammar is not valid GBNF.")
    return grammar
