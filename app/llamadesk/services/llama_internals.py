"""The one module that reaches past llama-cpp-python's public API.

LlamaDesk keeps one llama.cpp context and moves conversations in and out of it, which
the high-level ``Llama`` class does not offer: this module touches its private parts
(``_ctx``, ``_model``, ``input_ids``/``n_tokens``, ``_requires_eval``, and re-creating
the context at another size), the C calls that
need the raw context (``llama_state_seq_*``, ``llama_memory_*``,
``llama_get_logits_ith``, perf and abort), and patches two upstream behaviours (its
template compiler while loading, and its JSON-schema grammar's string rule). Nothing
else in the app does (tests/services/test_llama_internals.py enforces it), so a new
llama-cpp-python version is checked here, against ``llama_version.TESTED_VERSION``.

The rule for logits: llama-cpp-python samples at once on an exact prompt hit unless
``_requires_eval`` says its logits are stale. Restoring a saved sequence and shifting
leave logits that belong to something else, and a context re-created larger
(``resize_context``) has none, so each marks them stale; and the engine
marks them stale before every reply (``mark_logits_stale``), so a reply's first token
is always sampled from a decode made for that reply (docs/architecture.md).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import llama_cpp
import llama_cpp.llama_chat_format as llama_chat_format
import numpy as np
import numpy.typing as npt
from llama_cpp.llama_grammar import LlamaGrammar

from llamadesk.services import llama_early

log = logging.getLogger(__name__)

SEQ = 0  # llama-cpp-python keeps everything in sequence 0


class PatchNotAppliedError(RuntimeError):
    """An upstream behaviour this module patches has changed: the patch did nothing."""


# -- loading without llama-cpp-python's template compiler ------------------------------
class _UnusedChatFormatter:
    """Stands in for llama-cpp-python's template compiler while a model loads."""

    used = 0

    def __init__(self, **_kwargs: object) -> None:
        type(self).used += 1

    def to_chat_handler(self) -> None:
        return None


_LOAD_LOCK = threading.Lock()


@contextmanager
def without_llama_cpp_templates() -> Iterator[None]:
    """llama-cpp-python compiles every chat template in a file's metadata while loading,
    unbounded, and one that does not compile fails the whole load. LlamaDesk renders
    templates itself (core.chat_format, budgeted, with a fallback), so that step is
    skipped."""
    with _LOAD_LOCK:
        if not isinstance(getattr(llama_chat_format, "Jinja2ChatFormatter", None), type):
            raise PatchNotAppliedError("llama_cpp.llama_chat_format.Jinja2ChatFormatter is gone")
        original = llama_chat_format.Jinja2ChatFormatter
        llama_chat_format.Jinja2ChatFormatter = _UnusedChatFormatter  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            llama_chat_format.Jinja2ChatFormatter = original  # type: ignore[misc]


@contextmanager
def adopting_early_model() -> Iterator[list[bool]]:
    """While a ``Llama`` is made: its model comes from ``llama_early.take`` when the
    early load (services/llama_early.py) loaded that file with the same parameters,
    else from llama.cpp as usual. ``LlamaModel`` loads through the bindings' module
    attribute, which is swapped here (under the load lock); the list it yields says
    whether that attribute was called at all (the patch took)."""
    b: Any = llama_early.bindings()
    original = b.llama_model_load_from_file
    called = [False]

    def load_from_file(path: bytes, params: Any) -> Any:
        called[0] = True
        model = llama_early.take(path.decode("utf-8"), params)
        return model if model is not None else original(path, params)

    b.llama_model_load_from_file = load_from_file
    try:
        yield called
    finally:
        b.llama_model_load_from_file = original


def new_llama(*, adopt_early: bool = True, **kwargs: Any) -> llama_cpp.Llama:
    """``llama_cpp.Llama(**kwargs)`` without its template step, on the model loaded early
    when it is the same (``adopting_early_model``; not with ``adopt_early=False``: the
    embedder's model is not the chat's, and must not free it). Raises
    PatchNotAppliedError when the file has a chat template and the stand-in was never
    asked to compile it (upstream loads templates some other way now), or when the model
    was not loaded through the bindings' ``llama_model_load_from_file``."""
    adopting = adopting_early_model() if adopt_early else nullcontext([True])
    with without_llama_cpp_templates(), adopting as called:
        before = _UnusedChatFormatter.used
        llm = llama_cpp.Llama(**kwargs)
        compiled = _UnusedChatFormatter.used - before
    if not called[0]:
        llm.close()
        llama_early.discard()
        raise PatchNotAppliedError("llama-cpp-python no longer loads models through "
                                   "llama_cpp.llama_cpp.llama_model_load_from_file")
    has_template = any(k.startswith("tokenizer.chat_template") for k in (llm.metadata or {}))
    if has_template and compiled == 0:
        llm.close()
        raise PatchNotAppliedError("llama-cpp-python no longer builds chat templates "
                                   "through Jinja2ChatFormatter while loading")
    if not hasattr(llm, "_requires_eval"):  # mark_logits_stale would set it in vain
        llm.close()
        raise PatchNotAppliedError("llama-cpp-python's Llama no longer has _requires_eval")
    return llm


def load_ggml_library(name: str, folder: Path) -> ctypes.CDLL:
    """One of llama.cpp's own libraries (``ggml``, ``ggml-base``) from ``folder``, loaded
    the way llama-cpp-python loads them."""
    from llama_cpp._ctypes_extensions import load_shared_library as load

    return cast(ctypes.CDLL, load(name, folder))


# -- the model ---------------------------------------------------------------------------
def n_ctx_train(llm: llama_cpp.Llama) -> int:
    """The context length the model was trained with."""
    return int(llm._model.n_ctx_train())


def n_params(llm: llama_cpp.Llama) -> int:
    """The model's parameter count."""
    return int(llm._model.n_params())


def is_end_of_generation(llm: llama_cpp.Llama, token: int) -> bool:
    """Whether ``token`` ends a reply (EOS, EOT, ...)."""
    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))


def grammar_parses(llm: llama_cpp.Llama, grammar: LlamaGrammar) -> bool:
    """Whether llama.cpp accepts ``grammar``. llama-cpp-python does not check: it adds
    the NULL sampler a grammar that does not parse gives, and the process crashes."""
    sampler = llama_cpp.llama_sampler_init_grammar(
        llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


# -- sampling ------------------------------------------------------------------------------
def cut_size(top_k: int, window: int) -> int:
    """The candidates kept before the penalties: every one that can still reach the
    top ``top_k`` after up to ``window`` penalised tokens are lowered."""
    return top_k + window


def _sampler_with_top_first(llm: llama_cpp.Llama, **kwargs: Any) -> Any:
    """llama-cpp-python's sampler chain with a top-k of ``top_k`` plus the penalty window
    in front. Its chain runs the penalties before top-k, over all ~49,000 candidates
    (~0.15 ms a token here, more than the rest of the chain). Where the penalties can only
    lower a logit, top-k after them keeps only tokens that were among the ``top_k`` +
    (window) best before them: at most one per penalised token can drop below. So the
    first cut changes no sampled token (ties apart: llama.cpp orders equal logits as it
    sorts them), and the penalties then see ~100 candidates."""
    sampler = type(llm)._init_sampler(llm, **kwargs)
    top_k = int(kwargs.get("top_k", 40))
    window = int(llm.last_n_tokens_size)
    lowers_only = (kwargs.get("repeat_penalty", 1.0) >= 1.0
                   and kwargs.get("frequency_penalty", 0.0) >= 0.0
                   and kwargs.get("presence_penalty", 0.0) >= 0.0)
    if (kwargs.get("temp", 0.8) <= 0.0 or kwargs.get("mirostat_mode", 0) != 0
            or kwargs.get("grammar") is not None or kwargs.get("logits_processor")
            or top_k <= 0 or top_k + window >= llm.n_vocab() or not lowers_only):
        return sampler  # greedy, grammars and the rest: the chain as it is
    chain = sampler.sampler
    parts = [llama_cpp.llama_sampler_chain_remove(chain, 0)
             for _ in range(llama_cpp.llama_sampler_chain_n(chain))]
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(
        cut_size(top_k, window)))
    for part in parts:
        llama_cpp.llama_sampler_chain_add(chain, part)
    return sampler


def cut_candidates_first(llm: llama_cpp.Llama, enabled: bool = True) -> None:
    """Have ``llm``'s sampled replies (not greedy ones) cut the candidates to the best
    few before the penalties (``_sampler_with_top_first``), or not."""
    if enabled:
        owner = weakref.ref(llm)  # no cycle: the Llama is freed as soon as it is dropped

        def init_sampler(**kwargs: Any) -> Any:
            this = owner()
            assert this is not None
            return _sampler_with_top_first(this, **kwargs)

        llm._init_sampler = init_sampler  # type: ignore[method-assign,assignment]
    else:
        llm.__dict__.pop("_init_sampler", None)


# -- the context -------------------------------------------------------------------------
def set_abort_callback(llm: llama_cpp.Llama, callback: Any) -> None:
    """Have llama.cpp call ``callback`` between graph nodes (a NULL one: never)."""
    llama_cpp.llama_set_abort_callback(llm._ctx.ctx, callback, None)


def set_decode_threads(llm: llama_cpp.Llama, n_threads: int) -> None:
    """Decode single tokens with ``n_threads`` and batches with no more (at most the
    threads the context was created with)."""
    llama_cpp.llama_set_n_threads(llm._ctx.ctx, n_threads,
                                  min(n_threads, int(llm.context_params.n_threads_batch)))


def decode_thread_count(llm: llama_cpp.Llama) -> int:
    """The threads the context decodes single tokens with now."""
    return int(llama_cpp.llama_n_threads(llm._ctx.ctx))


def batch_thread_count(llm: llama_cpp.Llama) -> int:
    """The threads the context reads batches (prompts) with now."""
    return int(llama_cpp.llama_n_threads_batch(llm._ctx.ctx))


def reset_perf(llm: llama_cpp.Llama) -> None:
    """Start llama.cpp's own timings afresh."""
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)


def prompt_perf(llm: llama_cpp.Llama) -> tuple[int, float]:
    """Prompt tokens decoded since ``reset_perf`` and the milliseconds they took."""
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    return int(perf.n_p_eval), float(perf.t_p_eval_ms)


def last_logits(llm: llama_cpp.Llama) -> npt.NDArray[np.float32]:
    """The logits of the context's last decoded row (a view, valid until the next decode)."""
    row = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),))


def held_tokens(llm: llama_cpp.Llama) -> list[int]:
    """The tokens the context holds."""
    return [int(t) for t in llm._input_ids.tolist()]


def n_held(llm: llama_cpp.Llama) -> int:
    """How many tokens the context holds."""
    return int(llm.n_tokens)


def forget_context(llm: llama_cpp.Llama) -> None:
    """Empty the context (after a failed or aborted decode its cache is unknown)."""
    llm.reset()  # n_tokens 0, logits stale
    llm._ctx.kv_cache_clear()


def mark_logits_stale(llm: llama_cpp.Llama) -> None:
    """Make the next ``generate`` decode at least the prompt's last token before it
    samples, even on an exact prompt hit."""
    llm._requires_eval = True


def logits_are_stale(llm: llama_cpp.Llama) -> bool:
    """Whether the next ``generate`` will decode before it samples."""
    return bool(llm._requires_eval)


# -- the context's size ---------------------------------------------------------------
def context_size(llm: llama_cpp.Llama) -> int:
    """The tokens the context has room for now."""
    return int(llm.n_ctx())


def resize_context(llm: llama_cpp.Llama, n_ctx: int) -> None:
    """Give ``llm`` a context of ``n_ctx`` tokens on the same model, keeping the tokens
    it holds and their KV state (saved, the old context freed, then restored into the
    new one, so the two never take memory at once). llama-cpp-python ties a context to
    its ``Llama``; its ``_ctx``, ``_n_ctx``, ``input_ids`` and ``context_params`` are
    swapped here. Raises RuntimeError when llama.cpp cannot create the context (the
    ``Llama`` then has a context of the old size again, empty)."""
    from llama_cpp import _internals

    saved = save_sequence(llm, 1 << 62) if n_held(llm) > 0 else None
    old_size = int(llm.context_params.n_ctx)
    llm._ctx.close()
    try:
        llm._ctx = _new_context(llm, n_ctx, _internals)
    except ValueError as exc:
        llm._ctx = _new_context(llm, old_size, _internals)
        _after_new_context(llm)
        raise RuntimeError(f"llama.cpp could not create a context of {n_ctx} tokens") from exc
    _after_new_context(llm)
    if saved is not None and not restore_sequence(llm, *saved):
        log.warning("the context grew but its KV state did not carry over; re-reading it")


def _new_context(llm: llama_cpp.Llama, n_ctx: int, internals_module: Any) -> Any:
    llm.context_params.n_ctx = n_ctx
    ctx = internals_module.LlamaContext(model=llm._model, params=llm.context_params,
                                        verbose=llm.verbose)
    llm._stack.callback(ctx.close)  # freed with the Llama, before its model
    return ctx


def _after_new_context(llm: llama_cpp.Llama) -> None:
    """The wrapper's own bookkeeping for an empty context of the new size."""
    llm._n_ctx = llm.n_ctx()
    llm.input_ids = np.ndarray((llm._n_ctx,), dtype=np.intc)
    llm.n_tokens = 0
    mark_logits_stale(llm)


# -- saved sequences and shifting ------------------------------------------------------
def save_sequence(llm: llama_cpp.Llama, max_bytes: int) -> tuple[tuple[int, ...], bytes] | None:
    """The context's tokens and KV state, or None when it is empty or over ``max_bytes``."""
    ctx = llm._ctx.ctx
    size = int(llama_cpp.llama_state_seq_get_size(ctx, SEQ))
    if size <= 0 or size > max_bytes:
        return None
    buf = (ctypes.c_uint8 * size)()
    written = int(llama_cpp.llama_state_seq_get_data(ctx, buf, size, SEQ))
    if written <= 0:
        return None
    return tuple(llm._input_ids.tolist()), bytes(buf)[:written]


def restore_sequence(llm: llama_cpp.Llama, tokens: tuple[int, ...], data: bytes) -> bool:
    """Make the context hold a saved sequence. A state carries no logits: they are
    marked stale. Returns False (context emptied) when llama.cpp refuses the state."""
    llm._ctx.kv_cache_clear()
    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    restored = llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buf, len(data), SEQ) != 0
    memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
    # A state read from disk must hold exactly its tokens' positions, no more, no fewer.
    if not restored or llama_cpp.llama_memory_seq_pos_max(memory, SEQ) != len(tokens) - 1:
        llm._ctx.kv_cache_clear()
        llm.reset()
        return False
    llm.input_ids[: len(tokens)] = tokens
    llm.n_tokens = len(tokens)
    mark_logits_stale(llm)
    return True


def can_shift(llm: llama_cpp.Llama) -> bool:
    """Whether the context's memory can move tokens to other positions."""
    memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
    return bool(memory) and bool(llama_cpp.llama_memory_can_shift(memory))


def shift_sequence(llm: llama_cpp.Llama, start: int, removed: int, kept: int) -> None:
    """Keep the first ``start`` tokens, drop the next ``removed``, move the ``kept`` after
    them down by ``removed`` and drop the rest (check ``can_shift`` first). The logits
    left are from before the shift: marked stale."""
    memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
    old = llm._input_ids.tolist()
    moved_from = start + removed
    llama_cpp.llama_memory_seq_rm(memory, SEQ, moved_from + kept, -1)
    llama_cpp.llama_memory_seq_rm(memory, SEQ, start, moved_from)
    llama_cpp.llama_memory_seq_add(memory, SEQ, moved_from, moved_from + kept, -removed)
    llm.input_ids[start:start + kept] = old[moved_from:moved_from + kept]
    llm.n_tokens = start + kept
    mark_logits_stale(llm)


# -- the JSON-schema grammar -------------------------------------------------------------
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def strict_json_strings(gbnf: str) -> str:
    """``gbnf`` from llama-cpp-python's schema converter with raw control characters kept
    out of strings, which JSON forbids (and json.loads refuses); newer llama.cpp excludes
    them the same way. Raises PatchNotAppliedError when the converter's string rule is not
    the one this patch replaces."""
    if "char ::=" not in gbnf:
        return gbnf  # a schema without strings
    patched = gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)
    if _STRICT_CHAR not in patched:
        raise PatchNotAppliedError("llama-cpp-python's JSON-schema grammar has a string "
                                   "rule this version does not know")
    return patched
