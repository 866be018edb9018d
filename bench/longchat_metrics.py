"""A chat ten times longer than the model's context, through the whole app path: time to
first token once the history no longer fits, against before it and against llama.cpp
reading half the context."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QObject, Slot

from common import Goal, Metric, side, summarize, warmups
from harness import AppHarness, BenchError
from llamadesk.core.conversation import SamplingParams
from model_reference import FILLER, Reference


@dataclass(frozen=True)
class LongChatSizes:
    """How long a chat, in how small a context."""

    n_ctx: int
    question_tokens: int
    reply_tokens: int
    contexts: int  # the chat's length in contexts


FULL = LongChatSizes(n_ctx=1024, question_tokens=100, reply_tokens=24, contexts=10)
# Quick: the smoke test's run; it must overflow a few times, and be short.
QUICK = LongChatSizes(n_ctx=256, question_tokens=60, reply_tokens=4, contexts=2)


@dataclass
class LongChat:
    """One long chat: TTFT per turn, and from which turn the history overflowed."""

    ttft_ms: list[float] = field(default_factory=list)
    overflowed: list[bool] = field(default_factory=list)
    moved: list[bool] = field(default_factory=list)
    tokens: int = 0

    @property
    def before(self) -> list[float]:
        # The first turn reads the system prompt (and in quick mode loads the model).
        return [t for t, o in zip(self.ttft_ms[1:], self.overflowed[1:], strict=True) if not o]

    @property
    def after(self) -> list[float]:
        return [t for t, o in zip(self.ttft_ms, self.overflowed, strict=True) if o]


class _MemoryWatch(QObject):
    """Where the model's memory begins in the chat being measured (context_changed)."""

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self.first_in_memory: int | None = None

    @Slot(int, object, int, int)
    def on_context(self, conversation_id: int, first: int | None, _used: int,
                   _n_ctx: int) -> None:
        if conversation_id == self.conversation_id:
            self.first_in_memory = first


def _question(h: AppHarness, i: int, n_tokens: int) -> str:
    text = f"Question {i}: tell me about a new place, and what its people do all year. "
    while h.count_tokens(text) < n_tokens:
        text += FILLER
    return text


def _long_chat(h: AppHarness, watch: _MemoryWatch, sizes: LongChatSizes, seed: int) -> LongChat:
    params = replace(SamplingParams(), max_tokens=sizes.reply_tokens, n_ctx=sizes.n_ctx,
                     seed=seed)
    cid = h.new_conversation(params)
    watch.conversation_id, watch.first_in_memory = cid, None
    chat = LongChat()
    turn = 0
    while chat.tokens < sizes.contexts * sizes.n_ctx:
        question = _question(h, turn, sizes.question_tokens)
        before = watch.first_in_memory
        reply = h.send(question)
        chat.ttft_ms.append(reply.ttft_s * 1000)
        chat.overflowed.append(watch.first_in_memory is not None)
        chat.moved.append(watch.first_in_memory != before)
        chat.tokens += h.count_tokens(question)
        if reply.message is not None:
            chat.tokens += h.count_tokens(reply.message.content)
        turn += 1
    if not chat.after or not chat.before:
        raise BenchError("the chat never outgrew the context")
    return chat


def long_chat(h: AppHarness, ref: Reference, quick: bool, runs: int) -> list[Metric]:
    """Median TTFT after the history overflowed ÷ before it; the worst turn after it ÷
    llama.cpp's time to read half the context."""
    sizes = QUICK if quick else FULL
    watch = _MemoryWatch()
    h.controller.context_changed.connect(watch.on_context)
    half = sizes.n_ctx // 2

    def reference_ms() -> float:
        return half / ref.bench(pp=half) * 1000

    chats: list[LongChat] = []
    refs: list[float] = []
    seeds = iter(range(500, 1000))
    skip = warmups(1)
    for run in range(runs + skip):
        if run % 2 == 0:
            chat = _long_chat(h, watch, sizes, next(seeds))
            measured = reference_ms()
        else:
            measured = reference_ms()
            chat = _long_chat(h, watch, sizes, next(seeds))
        if run >= skip:
            chats.append(chat)
            refs.append(measured)
    h.controller.context_changed.disconnect(watch.on_context)

    after = [statistics.median(c.after) for c in chats]
    before = [statistics.median(c.before) for c in chats]
    worst = [max(c.after) for c in chats]
    details: dict[str, Any] = {
        "n_ctx": sizes.n_ctx, "reply_tokens": sizes.reply_tokens,
        "turns": [len(c.ttft_ms) for c in chats],
        "chat_tokens": [c.tokens for c in chats],
        "first_overflow_turn": [c.overflowed.index(True) + 1 for c in chats],
        "memory_moves": [sum(c.moved) for c in chats],
        "ttft_ms_after_overflow": summarize([t for c in chats for t in c.after]),
        "ttft_ms_per_turn_first_run": chats[0].ttft_ms,
    }
    title = f"n_ctx {sizes.n_ctx}, a chat {sizes.contexts}× as long"
    return [
        Metric("long_chat_ttft_ratio", f"long chat TTFT, after overflow ÷ before ({title})",
               "×", Goal("<=", 1.5), [a / b for a, b in zip(after, before, strict=True)],
               numerator=side("median TTFT after the history overflowed", "ms", after),
               reference=side("median TTFT before it (turn 2 on)", "ms", before),
               details=details,
               notes="send → first text in the message model, every turn of one chat"),
        Metric("long_chat_worst_ttft", f"long chat, worst TTFT after overflow ÷ {ref.kind} "
               f"reading half the context ({half} tokens)", "×", Goal("<=", 1.0),
               [w / r for w, r in zip(worst, refs, strict=True)],
               numerator=side("worst TTFT after the history overflowed", "ms", worst),
               reference=side(f"{ref.kind} pp{half}", "ms", refs),
               notes="the turn that moves the model's memory start shifts what is kept in "
                     "the KV cache instead of reading it again"),
    ]
