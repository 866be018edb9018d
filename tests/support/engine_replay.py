"""Seeded random sequences of what users and API clients do to the one engine, each
greedy reply checked against a fresh engine's reply to the same prompt.

Shared by tests/services/test_engine_replay.py (a short sample on every run) and
bench/replay_metrics.py (the long run). The rule (docs/architecture.md): with greedy
sampling, every reply's tokens equal a fresh engine's, and their log probabilities do
within ``LOGPROB_TOLERANCE``, whatever happened before in the process. A stopped reply
is a prefix of the fresh one. The stated exception: a conversation whose context was
shifted holds cache computed while the dropped messages still stood before it, so its
replies must only start from a context holding exactly the fresh render, and sample
their first token after a decode made for them (``last_prompt_evaluated >= 1``).

Where a log probability differs by more than the tolerance, the driver asks why: a fresh
engine decodes the same tokens in the same shapes as the engine under test did (a token
decoded alone where it was, batches where they were; ``DecodeShapes``) and must then give
the very same log probabilities (within ``SAME``). llama.cpp computes a token decoded
alone (each generated token; the last prompt token re-read on an exact hit) through other
kernels than a batch, so a cache that holds a reply's tokens differs slightly from one
that read the same text as a prompt. Logits left by another context, or a cache that
is not this conversation's, cannot pass that check.

A failure raises ``ReplayMismatchError`` with the seed and the operations so far; replay it
with ``ReplayDriver(...).run(seed, length)``.
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from llamadesk.api.convert import chat_request, completion_request
from llamadesk.api.schemas import ChatCompletionRequest, CompletionRequest
from llamadesk.core.conversation import FinishReason, Message, Role, SamplingParams
from llamadesk.services import llama_internals as internals
from llamadesk.services.constraints import ReplyConstraints, TokenLogprob, token_logprob
from llamadesk.services.engine import (
    EngineError,
    GenerationRequest,
    GenerationResult,
    LlamaEngine,
    LoadOptions,
)

#: Log probabilities of the same token may differ this much from a fresh engine that
#: read the whole prompt at once. Not from the size of the batches (a fresh engine
#: reading prompts 8 tokens at a time matches one reading 512 at a time exactly) nor from
#: which cells a restored cache sits in, but from tokens the cache holds that llama.cpp
#: decoded alone: seed 1158 gave -1.4313 against -1.6744, and a fresh engine decoding
#: the same tokens alike gives -1.4313 exactly. Beyond this, ``DecodeShapes`` decides.
#: Logits left by another context differ by whole units.
LOGPROB_TOLERANCE = 0.2
#: How far the same computation may differ: a fresh engine decoding the same tokens in
#: the same shapes (float32 logits, compared as float64).
SAME = 1e-4
#: A different pick is a near-tie decided by that rounding, not a wrong reply, when a
#: fresh engine rates our token within this of its own pick; comparison ends there (the
#: replies go different ways from it).
TIE = 0.5
TOP = 5  # alternatives asked for, to find our pick among a fresh engine's
N_CTX = 256  # the smallest the app allows: chats overflow and shift within a few turns
SYSTEM = "You are a friendly guide. Answer briefly."
TOPICS = ["rivers", "bread", "lighthouses", "winter", "trains", "bees", "clocks", "bridges"]
STOP_STAGES = ("template", "mid-prompt", "before-first-token", "mid-reply")


class ReplayMismatchError(AssertionError):
    """A reply broke the rule; the message carries the seed and the operations."""


class _TokenDiffersError(ReplayMismatchError):
    """A token, or its log probability, is not a fresh engine's: ``DecodeShapes`` asks why."""


class StopPressed(threading.Event):
    """The user's Stop at a chosen stage of one reply: while the template renders,
    after ``prompt_checks`` abort checks during the prompt's decode, or at the check of
    token ``token`` (0: before the first token is shown)."""

    def __init__(self, stage: str, rng: random.Random) -> None:
        super().__init__()
        # A prompt's decode makes a few hundred checks here (one per graph node).
        self.prompt_checks = rng.randrange(0, 1500) // 5 if stage == "mid-prompt" else None
        self.token = {"before-first-token": 0, "mid-reply": rng.randrange(1, 4)}.get(stage)
        self.tokens_checked = 0
        if stage == "template":
            self.set()

    def is_set(self) -> bool:
        if super().is_set():
            return True
        caller = sys._getframe(1).f_code.co_name  # which of the engine's checks asks
        fire = False
        if caller == "_should_abort" and self.prompt_checks is not None:
            self.prompt_checks -= 1
            fire = self.prompt_checks < 0
        elif caller == "_finish_reason":
            fire = self.token is not None and self.tokens_checked >= self.token
            self.tokens_checked += 1
        if fire:
            self.set()
        return fire


@dataclass(frozen=True)
class Token:
    piece: tuple[int, ...]
    logprob: float
    top: tuple[tuple[tuple[int, ...], float], ...]  # the likeliest tokens, best first


@dataclass
class Reply:
    tokens: list[Token]
    finish: FinishReason
    prompt_read: int
    shifted: int


def _tokens(seen: list[TokenLogprob]) -> list[Token]:
    return [Token(t.bytes, t.logprob, tuple((raw, lp) for _text, lp, raw in t.top))
            for t in seen]


def _observed(request: GenerationRequest) -> tuple[GenerationRequest, list[TokenLogprob]]:
    """``request`` reporting each token's log probability (and the likeliest alternatives')."""
    seen: list[TokenLogprob] = []
    constraints = replace(request.constraints or ReplyConstraints(), top_logprobs=TOP,
                          on_logprob=seen.append)
    return replace(request, constraints=constraints), seen


@dataclass
class Chat:
    key: str
    history: list[Message] = field(default_factory=list)
    memory_start: int | None = None
    shifted: bool = False  # its context was shifted: the stated exception applies
    asked: int = 0


class FreshAnswers:
    """A second engine that answers each prompt from an empty context, once."""

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine
        self._answers: dict[tuple[object, ...], Reply] = {}

    def answer(self, request: GenerationRequest, prompt: tuple[int, ...]) -> Reply:
        c = request.constraints or ReplyConstraints()
        key = (prompt, request.params, c.grammar, c.stop, c.raw_prompt is not None)
        if key not in self._answers:
            self.engine.reset_context()
            observed, seen = _observed(replace(request, conversation_key="fresh",
                                               on_context=None))
            result = self.engine.generate(observed, lambda _t: None, threading.Event())
            self._answers[key] = Reply(_tokens(seen), result.stats.finish_reason,
                                       self.engine.last_prompt_evaluated, 0)
        return self._answers[key]


class DecodeShapes:
    """Which tokens of the engine's context llama.cpp decoded alone, and a fresh engine's
    log probabilities for a reply when it decodes the same tokens the same way.

    Every ``eval`` of the engine's ``Llama`` is noted, per position, under the tokens
    up to it (a running hash): a cell's values depend on those tokens and on how each
    was decoded, wherever the cache was saved, restored or grown since. Batches of any
    size above one compute alike; a batch of one does not."""

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine
        self._alone: dict[int, bool] = {}  # hash of the tokens up to a cell -> alone
        self._watched: object = None

    def watch(self) -> None:
        """Note the decodes of the engine's current ``Llama`` (a reload makes a new one)."""
        llm = self.engine._llm
        if llm is None or llm is self._watched:
            return
        self._watched = llm
        decode = llm.eval

        def noted(tokens: Sequence[int]) -> None:
            key = self._key(internals.held_tokens(llm))
            for chunk in self._chunks(list(tokens), llm):
                for token in chunk:
                    key = hash((key, token))
                    self._alone[key] = len(chunk) == 1
            decode(tokens)

        llm.eval = noted  # type: ignore[method-assign]

    @staticmethod
    def _key(tokens: Sequence[int]) -> int:
        key = 0
        for token in tokens:
            key = hash((key, token))
        return key

    @staticmethod
    def _chunks(tokens: list[int], llm: Any) -> Iterator[list[int]]:
        """How llama-cpp-python hands ``tokens`` to llama.cpp: n_batch, then n_ubatch."""
        step = max(1, min(int(llm.n_batch), int(llm.context_params.n_ubatch)))
        for start in range(0, len(tokens), step):
            yield tokens[start:start + step]

    def shape(self, prompt: Sequence[int]) -> list[bool]:
        """Per position of ``prompt``: whether the engine's cache holds it decoded alone."""
        key, shape = 0, []
        for token in prompt:
            key = hash((key, token))
            shape.append(self._alone.get(key, False))
        return shape

    def differs(self, fresh: LlamaEngine, prompt: Sequence[int], mine: Reply) -> str | None:
        """Decode ``prompt`` on ``fresh`` in the engine's shapes, then ``mine``'s tokens
        one at a time; None when every log probability is the same as ``mine``'s."""
        llm = fresh._llm
        assert llm is not None
        fresh.reset_context()
        run: list[int] = []
        for token, alone in zip(prompt, self.shape(prompt), strict=True):
            if alone:
                if run:
                    llm.eval(run)
                run = []
                llm.eval([token])
            else:
                run.append(token)
        if run:
            llm.eval(run)
        try:
            for i, token in enumerate(mine.tokens):
                logits = internals.last_logits(llm)
                ids = [int(t) for t in np.argsort(-logits)[:TOP * 10]]
                found = next((t for t in ids if tuple(llm.detokenize([t])) == token.piece),
                             None)
                if found is None:
                    return f"token {i} is not among a fresh engine's likeliest, decoded alike"
                logprob = token_logprob(logits, found, 0, lambda t: llm.detokenize([t])).logprob
                if abs(logprob - token.logprob) > SAME:
                    return (f"token {i}'s log probability is {token.logprob:.4f}, a fresh "
                            f"engine's decoding the same tokens alike {logprob:.4f}")
                llm.eval([found])
        finally:
            fresh.reset_context()
        return None


class ReplayDriver:
    """Runs seeded operation sequences on ``engine`` over three conversations."""

    def __init__(self, engine: LlamaEngine, fresh: LlamaEngine, model: Path,
                 options: LoadOptions) -> None:
        self.engine = engine
        self.fresh = FreshAnswers(fresh)
        self.shapes = DecodeShapes(engine)
        self.model = model
        self.options = options
        self.seen: Counter[str] = Counter()  # which situations the sequences reached
        self.replies = 0
        self.largest_difference = 0.0  # of a compared token's log probability
        self._ids = 0
        self._last_key: str | None = None

    # -- one sequence ------------------------------------------------------------------
    def run(self, seed: int, length: int) -> None:
        """One sequence of ``length`` operations. Raises ReplayMismatchError."""
        rng = random.Random(seed)
        chats = [Chat(f"{seed}-{i}") for i in range(3)]
        log: list[str] = []
        for _ in range(length):
            op = rng.choices(["ask", "ask1", "regenerate", "edit", "stop", "api", "error",
                              "reload"], weights=[5, 4, 4, 1, 3, 3, 1, 1])[0]
            chat = rng.choices(chats, weights=[7, 2, 1])[0]  # one grows until it shifts
            log.append(f"{op} {chat.key}")
            try:
                self._do(op, chat, rng, log)
            except ReplayMismatchError as exc:
                raise ReplayMismatchError(f"seed {seed}: {exc}\noperations: {'; '.join(log)}") \
                    from None

    def _do(self, op: str, chat: Chat, rng: random.Random, log: list[str]) -> None:
        if op == "reload":
            self.engine.unload()
            self.engine.load(self.model, self.options, model_id="bundled")
            self.seen["reload"] += 1
            return
        if op == "api":
            self._api(rng, log)
            return
        if op == "error":
            self._error(chat, rng)
            return
        has_reply = bool(chat.history) and chat.history[-1].role == Role.ASSISTANT
        if op == "regenerate" and has_reply:
            chat.history.pop()
            self.seen["regenerate"] += 1
        elif op == "edit" and has_reply:
            chat.history.pop()
            chat.history.pop()
            self._add(chat, Role.USER, self._question(chat, rng))
            self.seen["edit"] += 1
        elif not chat.history or chat.history[-1].role == Role.ASSISTANT:
            self._add(chat, Role.USER, self._question(chat, rng))
        if chat.memory_start not in {m.id for m in chat.history}:
            chat.memory_start = None  # its message is on another branch now
        max_tokens = 1 if op == "ask1" else rng.randrange(1, 7)
        stage = rng.choice(STOP_STAGES) if op == "stop" else None
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, n_ctx=N_CTX, seed=1)
        request = GenerationRequest(tuple(chat.history), SYSTEM, params, chat.key,
                                    memory_start_id=chat.memory_start)
        result = self._check(request, chat, stage, rng)
        if result.context is not None and result.context.moved:
            chat.memory_start = result.context.memory_start_id
        if result.text:  # kept as the window keeps it, stopped or not
            self._add(chat, Role.ASSISTANT, result.text)

    # -- the rule ----------------------------------------------------------------------
    def _check(self, request: GenerationRequest, chat: Chat | None, stage: str | None,
               rng: random.Random) -> GenerationResult:
        cancel = StopPressed(stage, rng) if stage else threading.Event()
        observed, seen = _observed(request)
        key = request.conversation_key
        switched = key != self._last_key
        self.shapes.watch()
        result = self.engine.generate(observed, lambda _t: None, cancel)
        self._last_key = key
        self.replies += 1
        if stage == "template":
            if not result.cancelled or seen:
                raise ReplayMismatchError(f"{key}: Stop while the template rendered was ignored")
            self.seen["stopped while the template rendered"] += 1
            return result
        prompt = tuple(self.fresh.engine.prompt_tokens(request))
        held = self.engine.context_tokens()
        if result.cancelled and self.engine.last_prompt_evaluated == 0 and not seen:
            # Stopped while the prompt was read: the context was emptied, nothing kept.
            self.seen["stopped mid-prompt"] += 1
            return result
        if result.cancelled:
            self.seen["stopped mid-reply" if seen else "stopped before the first token"] += 1
        mine = Reply(_tokens(seen), result.stats.finish_reason,
                     self.engine.last_prompt_evaluated, self.engine.context.last_shifted)
        if tuple(held[:len(prompt)]) != prompt:
            raise ReplayMismatchError(f"the context does not hold the fresh render of {key}")
        if mine.prompt_read < 1:
            raise ReplayMismatchError(f"{key}: the first token was sampled without a decode")
        if chat is not None and mine.shifted:
            chat.shifted = True
            self.seen["shift"] += 1
        if mine.prompt_read == 1 and len(prompt) > 1:
            self.seen["exact hit after a switch" if switched else "exact hit"] += 1
        elif mine.prompt_read < len(prompt):
            self.seen["prefix hit after a switch" if switched else "prefix hit"] += 1
        else:
            self.seen["no hit"] += 1
        if chat is not None and chat.shifted and mine.prompt_read < len(prompt):
            self.seen["after a shift (stated exception)"] += 1
            return result
        if chat is not None:
            chat.shifted = False  # read from scratch: exact again
        try:
            tie = self._compare(mine, self.fresh.answer(request, prompt), result.cancelled, key)
        except _TokenDiffersError as exc:
            self._decoded_alike(prompt, mine, str(exc))
            self.seen["beyond the tolerance, equal to a fresh engine decoding alike"] += 1
        else:
            if tie:  # trusted only where the same computation made the same choice
                self._decoded_alike(prompt, mine, f"{key}: a near-tie went the other way")
        return result

    def _decoded_alike(self, prompt: tuple[int, ...], mine: Reply, what: str) -> None:
        why = self.shapes.differs(self.fresh.engine, prompt, mine)
        if why is not None:
            raise ReplayMismatchError(f"{what}; {why}")

    def _compare(self, mine: Reply, fresh: Reply, stopped: bool, key: str | None) -> bool:
        """Raises on a difference; True when a near-tie ended the comparison."""
        for i, (a, b) in enumerate(zip(mine.tokens, fresh.tokens, strict=False)):
            if a.piece != b.piece:
                rated = dict(b.top).get(a.piece)
                if rated is not None and b.logprob - rated <= TIE:
                    self.seen["near-tie decided otherwise"] += 1
                    return True
                raise _TokenDiffersError(f"{key}: token {i} is {bytes(a.piece)!r}, a fresh "
                                     f"engine says {bytes(b.piece)!r}")
            difference = abs(a.logprob - b.logprob)
            self.largest_difference = max(self.largest_difference, difference)
            if difference > LOGPROB_TOLERANCE:
                raise _TokenDiffersError(f"{key}: token {i}'s log probability is {a.logprob:.4f}, "
                                     f"a fresh engine's {b.logprob:.4f}")
        if self._ended_at_a_near_tie(mine, fresh):
            self.seen["near-tie decided otherwise"] += 1
            return True
        if len(mine.tokens) > len(fresh.tokens) or (
                not stopped and len(mine.tokens) != len(fresh.tokens)):
            raise ReplayMismatchError(f"{key}: {len(mine.tokens)} tokens, a fresh engine "
                                 f"{len(fresh.tokens)}")
        return False

    @staticmethod
    def _ended_at_a_near_tie(mine: Reply, fresh: Reply) -> bool:
        """One reply ended (its end-of-reply token is not a shown token) where the other
        went on, and the end was a near-tie: rated within ``TIE`` of the token taken."""
        n = min(len(mine.tokens), len(fresh.tokens))
        ended, going = (mine, fresh) if len(mine.tokens) < len(fresh.tokens) else (fresh, mine)
        if n == max(len(mine.tokens), len(fresh.tokens)) or ended.finish != FinishReason.STOP:
            return False
        # The end's piece is empty; the rating comes from the reply that went on.
        token = going.tokens[n]
        end = dict(token.top).get(())
        return end is not None and token.logprob - end <= TIE

    # -- requests beside the chats -----------------------------------------------------
    def _api(self, rng: random.Random, log: list[str]) -> None:
        kind = rng.choice(["probe", "json", "logprobs", "completion"])
        log[-1] = f"api {kind}"
        self.seen[f"api {kind}"] += 1
        topic = rng.choice(TOPICS)
        if kind == "completion":
            request = completion_request(CompletionRequest(
                model="bundled", prompt=f"Three facts about {topic}:\n1.", max_tokens=5,
                temperature=0.0))
        else:
            body = {"model": "bundled", "temperature": 0.0,
                    "messages": [{"role": "user", "content": f"Is {topic} a noun? Yes or no."}],
                    "max_tokens": 1 if kind == "probe" else 6}
            if kind == "json":
                body["response_format"] = {"type": "json_object"}
            if kind == "logprobs":
                body.update(logprobs=True, top_logprobs=3)
            request = chat_request(ChatCompletionRequest.model_validate(body))
        self._check(request, None, None, rng)

    def _error(self, chat: Chat, rng: random.Random) -> None:
        """A request the engine refuses after it switched to the chat: a grammar that
        is not GBNF."""
        if not chat.history or chat.history[-1].role == Role.ASSISTANT:
            self._add(chat, Role.USER, self._question(chat, rng))
        request = GenerationRequest(
            tuple(chat.history), SYSTEM, SamplingParams(temperature=0.0, max_tokens=4,
                                                        n_ctx=N_CTX), chat.key,
            memory_start_id=chat.memory_start,
            constraints=ReplyConstraints(grammar="root ::= ("))
        held = self.engine.context_tokens()
        try:
            self.engine.generate(request, lambda _t: None, threading.Event())
        except EngineError:
            self.seen["engine error"] += 1
        else:
            raise ReplayMismatchError("a grammar that is not GBNF was accepted")
        if self.engine.context_tokens() != held:  # a refused request changes nothing
            raise ReplayMismatchError(f"{chat.key}: a refused request changed the context")
        self._last_key = chat.key

    # -- conversations -----------------------------------------------------------------
    def _add(self, chat: Chat, role: Role, text: str) -> None:
        self._ids += 1
        parent = chat.history[-1].id if chat.history else None
        chat.history.append(Message(id=self._ids, conversation_id=0, parent_id=parent,
                                    role=role, content=text, created_at=0.0))

    def _question(self, chat: Chat, rng: random.Random) -> str:
        chat.asked += 1
        topic = rng.choice(TOPICS)
        return (f"Chat {chat.key}, question {chat.asked}: tell me about {topic}, the people "
                f"who look after {topic} in small villages, and how {topic} change "
                f"from one season to the next.")
