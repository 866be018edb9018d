"""The llama.cpp engine: one ``Llama`` object, loaded, prompted and unloaded here.

No Qt: the inference service runs this on its worker thread, and the command line
runs it directly. Only one thread may use an engine at a time.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llama_cpp
from llama_cpp.llama_grammar import LlamaGrammar

from llamadesk.core.chat_format import ChatTemplate, ChatTemplateCancelled, ChatTemplateError
from llamadesk.core.conversation import FinishReason, MessageStats, SamplingParams
from llamadesk.core.gguf_checked import validate_gguf_once
from llamadesk.core.gguf_errors import GGUFValidationError
from llamadesk.core.paths import app_paths
from llamadesk.core.prompt import (
    ContextPlan,
    ContextUse,
    PromptError,
    PromptTooLongError,
    context_budget,
    plan_context,
)
from llamadesk.core.streaming import ReplyStream
from llamadesk.services import llama_internals as internals
from llamadesk.services.constraints import checked_grammar, token_logprob
from llamadesk.services.decode_threads import DecodeThreads
from llamadesk.services.engine_errors import ContextFullError as ContextFullError
from llamadesk.services.engine_errors import EngineError as EngineError

# The engine's data types live in a light module (no llama.cpp); re-exported here for
# the callers that name them as the engine's.
from llamadesk.services.engine_types import GenerationRequest as GenerationRequest
from llamadesk.services.engine_types import GenerationResult as GenerationResult
from llamadesk.services.engine_types import LoadOptions as LoadOptions
from llamadesk.services.engine_types import ModelInfo as ModelInfo
from llamadesk.services.engine_types import ReplyConstraints, TokenLogprob, stopped_result
from llamadesk.services.kv_context import FIRST_CONTEXT, UBATCH, KVContext
from llamadesk.services.kv_persist import SavedStates
from llamadesk.services.kv_persist import fingerprint as state_fingerprint

# The runtime's helpers are re-exported: the window, the CLI and the services name them
# as the engine's.
from llamadesk.services.llama_runtime import INT_ABORT_CALLBACK, build_identity
from llamadesk.services.llama_runtime import install_llama_log_routing as install_llama_log_routing
from llamadesk.services.llama_runtime import llama_cpp_version as llama_cpp_version
from llamadesk.services.llama_runtime import supports_gpu_offload as supports_gpu_offload
from llamadesk.services.llama_runtime import system_info as system_info
from llamadesk.services.tool_chat import render_tool_chat, with_call_grammar

if TYPE_CHECKING:
    from llamadesk.services.backend import BackendCapabilities

log = logging.getLogger(__name__)

#: llama.cpp's names for the KV cache types we offer.
KV_CACHE_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0}


class LlamaEngine:
    """Owns the one ``Llama``: load, unload, generate with streaming and cancellation."""

    def __init__(self, kv_cache_bytes: int = 256 * 1024 * 1024,
                 saved_states: SavedStates | None = None) -> None:
        self._llm: llama_cpp.Llama | None = None
        self._info: ModelInfo | None = None
        self._template: ChatTemplate | None = None
        self._cancel: threading.Event | None = None
        self.on_info_changed: Callable[[ModelInfo], None] = lambda _info: None
        # The C signature returns bool, but a ctypes callback declared with c_bool
        # corrupts the refcounts of True/False on CPython < 3.12 (a crash at exit).
        # An int-returning callback is ABI-compatible (the caller reads the low byte).
        self._abort_int_cb = INT_ABORT_CALLBACK(self._should_abort)
        self._abort_cb = ctypes.cast(self._abort_int_cb, llama_cpp.ggml_abort_callback)
        self._no_abort_cb = llama_cpp.ggml_abort_callback()  # a NULL function pointer
        self.context = KVContext(kv_cache_bytes, saved_states)
        self.kv_cache = self.context.states  # saved per-conversation states
        #: Prompt tokens the last reply read before its first token (at least one: see
        #: generate); the rest came from the context.
        self.last_prompt_evaluated = 0
        #: The threads one-token decodes use, chosen by the machine's load (set at load).
        self.decode_threads: DecodeThreads | None = None

    # -- loading -----------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        return self._info

    def load(self, path: str | os.PathLike[str], options: LoadOptions, *,
             model_id: str | None = None, fallback_format: str = "chatml",
             name: str = "") -> ModelInfo:
        """Load the GGUF at ``path`` (unloading any model first)."""
        self.unload()
        file = Path(path)
        if not file.is_file():
            raise EngineError(f"The model file {file} does not exist.")
        try:  # llama.cpp trusts the header's counts and lengths; a bad one can crash it
            # (a file that passed and has not changed since is not walked again)
            validate_gguf_once(file, app_paths().cache_dir)
        except GGUFValidationError as exc:
            raise EngineError(f"{exc}. Download or convert the model again.") from exc
        # Keys can always be quantised; llama.cpp quantises values only with flash
        # attention.
        type_k = KV_CACHE_TYPES.get(options.kv_cache_type, llama_cpp.GGML_TYPE_F16)
        type_v = type_k if options.flash_attn else llama_cpp.GGML_TYPE_F16
        kv_name = (f"k={options.kv_cache_type}, "
                   f"v={options.kv_cache_type if options.flash_attn else 'f16'}")
        # On CPU llama.cpp reads a prompt in steps of at most UBATCH tokens whatever the
        # batch, so a batch no larger costs nothing and lets the first context be small.
        # On a GPU the compute buffer is not in RAM, and larger steps read faster.
        batch = options.n_batch if options.n_gpu_layers else min(options.n_batch, UBATCH)
        started = time.perf_counter()
        try:
            llm = internals.new_llama(  # a small context, grown as a chat needs more
                model_path=str(file),
                n_ctx=min(options.n_ctx, max(FIRST_CONTEXT, batch)),
                n_batch=batch,
                n_ubatch=batch,
                n_threads=options.n_threads,
                n_threads_batch=options.n_threads,
                n_gpu_layers=options.n_gpu_layers,
                flash_attn=options.flash_attn,
                type_k=type_k,
                type_v=type_v,
                verbose=False,
            )
        except internals.PatchNotAppliedError as exc:
            raise EngineError(f"This llama-cpp-python is not the tested one: {exc}.") from exc
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(
                f"llama.cpp could not load {file.name}: the file may be damaged, incomplete, "
                f"or of an architecture this version does not support ({exc})."
            ) from exc
        elapsed = time.perf_counter() - started
        metadata: dict[str, Any] = dict(llm.metadata or {})
        template = ChatTemplate.for_model(metadata.get("tokenizer.chat_template"),
                                          fallback_format)
        if template.warning:
            log.warning("%s: %s", file.name, template.warning)
        internals.cut_candidates_first(llm)
        self._llm = llm
        self._template = template
        self.context.fingerprint = state_fingerprint(file, options, build_identity())
        self.decode_threads = DecodeThreads(int(llm.context_params.n_threads))
        template.on_warning = self._template_replaced
        self._info = ModelInfo(
            model_id=model_id or file.stem,
            path=str(file),
            name=name or str(metadata.get("general.name") or file.stem),
            architecture=str(metadata.get("general.architecture", "unknown")),
            n_ctx=options.n_ctx,
            n_ctx_train=internals.n_ctx_train(llm),
            n_params=internals.n_params(llm),
            size_bytes=file.stat().st_size,
            template_name=template.name,
            template_warning=template.warning,
            load_seconds=elapsed,
            options=options,
        )
        log.info("loaded %s in %.2fs (n_ctx=%d, threads=%d, gpu_layers=%d, flash_attn=%s, "
                 "kv=%s)", file.name, elapsed, options.n_ctx, options.n_threads,
                 options.n_gpu_layers, options.flash_attn, kv_name)
        return self._info

    def set_template(self, template: ChatTemplate) -> None:
        """Answer with ``template`` instead of the loaded file's own chat template (for a
        file whose template is wrong). Saved KV states were built with the old one."""
        self._require()
        self._template = template
        template.on_warning = self._template_replaced
        self.context.clear()

    def unload(self) -> None:
        """Free the model (llama.cpp memory is released now, not at garbage collection)."""
        if self._llm is not None:
            self._llm.close()
            log.info("unloaded %s", self._info.path if self._info else "model")
        self._llm = None
        self._info = None
        self._template = None
        self.decode_threads = None
        self.context.clear()
        self.context.fingerprint = None

    def keep_context(self) -> None:
        """Keep the state of the chat the model holds for the next launch (at quit)."""
        if self._llm is not None:
            self.context.persist(self._llm)

    def reset_context(self) -> None:
        """Empty the context and forget every saved state, as if freshly loaded."""
        internals.forget_context(self._require())
        self.context.clear()

    # -- the backend interface (services.backend.ChatBackend) ---------------------------
    def list_models(self) -> tuple[str, ...]:
        """The model this engine answers with: the loaded one, if any."""
        return (self._info.model_id,) if self._info is not None else ()

    def capabilities(self) -> BackendCapabilities:
        """Text stays on this computer; each chat's context is kept and planned here."""
        from llamadesk.services.backend import LOCAL_CAPABILITIES

        return LOCAL_CAPABILITIES

    # -- tokens ------------------------------------------------------------------------
    def _require(self) -> llama_cpp.Llama:
        if self._llm is None:
            raise EngineError("No model is loaded.")
        return self._llm

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes with the loaded model."""
        return len(self._require().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _special_text(self, token: int) -> str:
        llm = self._require()
        if token < 0:
            return ""
        return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    # -- generation --------------------------------------------------------------------
    def _should_abort(self, _data: ctypes.c_void_p) -> int:
        cancel = self._cancel
        return 1 if cancel is not None and cancel.is_set() else 0

    def _set_abort(self, enabled: bool) -> None:
        # The abort callback is a Python call per graph node: worth it while a long
        # prompt is evaluated, too costly per generated token (checked there instead).
        internals.set_abort_callback(
            self._require(), self._abort_cb if enabled else self._no_abort_cb)

    def generate(
        self,
        request: GenerationRequest,
        on_text: Callable[[str], None],
        cancel: threading.Event,
    ) -> GenerationResult:
        """Generate a reply to ``request.history``, calling ``on_text`` with each new
        piece of text. Returns when the model ends the reply, the token limit is hit, or
        ``cancel`` is set (then the partial text comes back with finish reason stopped).
        Raises EngineError with a readable reason on failure."""
        llm = self._require()
        assert self._info is not None
        params = request.params.validated()
        constraints = request.constraints or ReplyConstraints()
        try:
            plan = self._plan_or_raw(request, cancel)
        except ChatTemplateCancelled:  # Stop pressed while the prompt was being rendered
            return stopped_result(self._info.model_id)
        if self._template is not None:
            constraints = with_call_grammar(constraints, self._template)
        prompt, n_ctx = self._tokenize_prompt(plan.text), self._info.n_ctx
        if not prompt:  # a raw prompt of nothing, on a model that adds no BOS itself:
            prompt = [llm.token_bos()] if llm.token_bos() >= 0 else []  # as llama-cpp-python
        if not prompt:
            raise EngineError("The prompt is empty: there is nothing to continue.")
        max_tokens = min(params.max_tokens, n_ctx - len(prompt))
        if max_tokens <= 0:
            raise ContextFullError("The conversation fills the model's context; start a new "
                                   "chat or raise the context length.", len(prompt), n_ctx)
        # A request the engine refuses leaves the context as it was: checked before
        # the context grows, switches or shifts, each of which rewrites the cache.
        grammar = checked_grammar(llm, constraints.grammar)
        self.context.fit(llm, len(prompt), n_ctx)  # the reply grows it as it needs
        use = ContextUse(plan.memory_start_id, plan.dropped, len(prompt), n_ctx, plan.moved)
        if request.on_context is not None:
            request.on_context(use)
        self.context.switch(llm, request.conversation_key, prompt, request.kv_epoch)
        self.context.shift(llm, prompt)
        # The rule: a reply's first token is sampled from a decode made for this reply
        # (on an exact prompt hit, its last token is read again), never from logits
        # that a restore, a shift or another request left (docs/architecture.md).
        internals.mark_logits_stale(llm)
        llm.set_seed(params.seed if params.seed >= 0 else random.randrange(2**31))
        reply = self._run(prompt, params, max_tokens, on_text, cancel,
                          request.conversation_key, constraints, grammar, n_ctx)
        if reply.first_token_at is not None:  # the whole prompt was read
            self.context.answered(request.kv_epoch)
        text = reply.text.strip() if reply.finish != FinishReason.STOPPED else reply.text.rstrip()
        return GenerationResult(
            text=text, model_id=self._info.model_id, stats=self._stats(prompt, reply),
            dropped_messages=plan.dropped,
            context=replace(use, used_tokens=len(prompt) + reply.n_generated))

    def plan(self, request: GenerationRequest,
             cancel: threading.Event | None = None) -> ContextPlan:
        """What the model will see for ``request``: the planned, rendered prompt. Raises
        ChatTemplateCancelled when ``cancel`` is set while the template renders."""
        llm = self._require()
        assert self._template is not None
        n_ctx = self._info.n_ctx if self._info is not None else llm.n_ctx()  # its ceiling
        try:
            return plan_context(
                request.history, system_prompt=request.system_prompt,
                template=self._template,
                budget=context_budget(n_ctx, request.params.validated().max_tokens),
                count_tokens=self.count_tokens, memory_start_id=request.memory_start_id,
                bos_token=self._special_text(llm.token_bos()),
                eos_token=self._special_text(llm.token_eos()), cancel=cancel)
        except ChatTemplateCancelled:
            raise
        except PromptTooLongError as exc:
            raise ContextFullError(str(exc), n_ctx=n_ctx) from exc
        except (ChatTemplateError, PromptError) as exc:
            raise EngineError(str(exc)) from exc

    def _plan_or_raw(self, request: GenerationRequest,
                     cancel: threading.Event) -> ContextPlan:
        """The planned chat prompt, a chat with tools rendered whole, or a raw prompt
        taken as it is."""
        constraints = request.constraints
        if constraints is not None and constraints.tool_chat is not None:
            assert self._template is not None
            llm = self._require()
            text = render_tool_chat(
                self._template, constraints.tool_chat, self._info.name if self._info else "",
                self._special_text(llm.token_bos()), self._special_text(llm.token_eos()),
                cancel)
        elif constraints is not None and constraints.raw_prompt is not None:
            text = constraints.raw_prompt
        else:
            return self.plan(request, cancel)
        return ContextPlan(text=text, messages=(), memory_start_id=0, dropped=0, n_tokens=0)

    def _template_replaced(self, _warning: str) -> None:
        """The template (the one detector) says its fallback took over: tell the worker."""
        template, info = self._template, self._info
        if template is not None and info is not None:
            self._info = replace(info, template_name=template.name,
                                 template_warning=template.warning)
            self.on_info_changed(self._info)

    def _tokenize_prompt(self, text: str) -> list[int]:
        llm = self._require()
        bos = self._special_text(llm.token_bos())
        starts_with_bos = bool(bos) and text.startswith(bos)
        add_bos = bool(llm.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false")
        return llm.tokenize(text.encode("utf-8"), add_bos=add_bos and not starts_with_bos,
                            special=True)

    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        """The tokens of the prompt ``request`` would be answered from, freshly rendered."""
        return self._tokenize_prompt(self._plan_or_raw(request, threading.Event()).text)

    def context_tokens(self) -> list[int]:
        """The tokens the model's context holds now."""
        return internals.held_tokens(self._require())

    def _run(self, prompt: list[int], params: SamplingParams, max_tokens: int,
             on_text: Callable[[str], None], cancel: threading.Event,
             key: str | None, constraints: ReplyConstraints,
             grammar: LlamaGrammar | None, n_ctx: int) -> _Reply:
        """Read the prompt and sample the reply token by token."""
        llm = self._require()
        assert self._template is not None
        template_stops = () if constraints.raw_prompt is not None else self._template.stop
        stream = ReplyStream(template_stops + constraints.stop)
        reply = _Reply(stream)
        threads = self.decode_threads
        assert threads is not None
        self._cancel = cancel
        internals.reset_perf(llm)
        self._set_abort(True)
        threads.between_tokens(llm, counted=False)  # a prompt of one token is decoded alone
        try:
            for token in llm.generate(
                prompt, top_k=params.top_k, top_p=params.top_p, min_p=params.min_p,
                temp=params.temperature, repeat_penalty=params.repeat_penalty,
                frequency_penalty=constraints.frequency_penalty,
                presence_penalty=constraints.presence_penalty, grammar=grammar,
            ):
                if reply.first_token_at is None:
                    reply.first_token_at = time.perf_counter()
                    # Taken now: a context that grows later counts afresh.
                    reply.prompt_read, reply.prompt_ms = internals.prompt_perf(llm)
                    self._set_abort(False)
                reply.finish = self._finish_reason(token, cancel)
                if reply.finish is not None:
                    break
                reply.n_generated += 1
                if constraints.on_logprob is not None:
                    constraints.on_logprob(self._logprob(token, constraints.top_logprobs or 0))
                shown = stream.feed(llm.detokenize([token]))
                if shown:
                    on_text(shown)
                if stream.stopped:
                    reply.finish = FinishReason.STOP
                    break
                if reply.n_generated >= max_tokens:
                    reply.finish = FinishReason.LENGTH
                    break
                self.context.room_for_next_token(llm, n_ctx)
                threads.between_tokens(llm)
        except RuntimeError as exc:
            # llama_decode returns 2 when the abort callback fired mid-prompt.
            internals.forget_context(llm)
            if key:
                self.kv_cache.drop(key)
            if not cancel.is_set():
                raise EngineError(f"llama.cpp failed while generating: {exc}") from exc
            reply.finish = FinishReason.STOPPED
        finally:
            self._set_abort(False)
            self._cancel = None
        tail = stream.finish()
        if tail:
            on_text(tail)
        reply.ended = time.perf_counter()
        return reply

    def _logprob(self, token: int, top_n: int) -> TokenLogprob:
        """``token``'s log probability from the logits it was sampled from (the context's
        last row until the next decode)."""
        llm = self._require()
        return token_logprob(internals.last_logits(llm), token, top_n,
                             lambda t: llm.detokenize([t]))

    def _finish_reason(self, token: int, cancel: threading.Event) -> FinishReason | None:
        if cancel.is_set():
            return FinishReason.STOPPED
        if internals.is_end_of_generation(self._require(), token):
            return FinishReason.STOP
        return None

    def _stats(self, prompt: list[int], reply: _Reply) -> MessageStats:
        n_p_eval, t_p_eval_ms = (  # from the first token on, the context may have grown
            (reply.prompt_read, reply.prompt_ms) if reply.first_token_at is not None
            else internals.prompt_perf(self._require()))
        # llama.cpp's own timings for prompt and decode; wall clock for time to first token.
        prompt_tps = (n_p_eval / (t_p_eval_ms / 1000.0)
                      if t_p_eval_ms > 0 and n_p_eval > 0 else None)
        self.last_prompt_evaluated = reply.prompt_read
        first, n = reply.first_token_at, reply.n_generated
        if n > 1 and first is not None and reply.ended > first:
            tps: float | None = (n - 1) / (reply.ended - first)
        else:
            tps = None
        return MessageStats(
            prompt_tokens=len(prompt),
            completion_tokens=n,
            ttft_ms=(first - reply.started) * 1000.0 if first is not None else None,
            tokens_per_s=tps,
            prompt_tokens_per_s=prompt_tps,
            finish_reason=reply.finish or FinishReason.LENGTH,
        )


@dataclass
class _Reply:
    """A reply as the token loop leaves it."""

    stream: ReplyStream
    n_generated: int = 0
    finish: FinishReason | None = None
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    prompt_read: int = 0  # tokens decoded before the first token was sampled
    prompt_ms: float = 0.0  # and the milliseconds llama.cpp took for them
    ended: float = 0.0

    @property
    def text(self) -> str:
        return self.stream.text
