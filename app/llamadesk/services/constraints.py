"""Constraints a request through the local API may put on a reply (docs/api.md): a
grammar, extra stop strings, OpenAI's penalties, or a raw prompt with no chat template.

The window sends none of them; the engine applies them in the same token loop. This
module is the engine's side (llama.cpp, numpy): compiling a grammar and reading a token's
log probability. The constraints themselves are plain data in ``engine_types`` and the
JSON grammars are built by ``json_grammar``; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from llama_cpp.llama_grammar import LlamaGrammar

from llamadesk.services import llama_internals as internals
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import ReplyConstraints as ReplyConstraints
from llamadesk.services.engine_types import TokenLogprob as TokenLogprob
from llamadesk.services.engine_types import ToolChat as ToolChat
from llamadesk.services.json_grammar import json_object_grammar as json_object_grammar
from llamadesk.services.json_grammar import json_schema_grammar as json_schema_grammar
from llamadesk.services.json_grammar import tool_call_grammar as tool_call_grammar

if TYPE_CHECKING:
    from llama_cpp import Llama


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
