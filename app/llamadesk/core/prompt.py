"""The context planner: which stored messages the model sees, within its context budget.

A chat that outgrows the context keeps a *memory start*: the first stored message the
model still sees. It only moves forward, in large steps (so the kept part is at most
``keep`` of the budget), at the start of a user turn, and stays where it is for the
turns that follow. Their prompts then begin with the same text, so llama.cpp re-uses
the context it already holds instead of reading the whole history again on every turn.
The caller stores the memory start (per branch) and passes it back on the next turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llamadesk.core.chat_formats import ChatMessage
from llamadesk.core.conversation import Message, Role

if TYPE_CHECKING:  # the template engine (Jinja) is imported by whoever renders
    from llamadesk.core.chat_format import ChatTemplate

#: After an overflow the kept history takes at most this share of the room beside the
#: system prompt: about half, a little less so that the turn that re-reads it stays
#: within llama.cpp's time to read half the context (docs/performance.md).
KEEP_AFTER_OVERFLOW = 0.45


class PromptError(Exception):
    """The prompt cannot be built; the message says why."""


class PromptTooLongError(PromptError):
    """Even the newest message alone does not fit the context."""


@dataclass(frozen=True)
class ContextPlan:
    """What the model sees for one reply.

    ``memory_start_id`` is the first stored message in the model's memory; ``dropped``
    how many stored messages come before it (left out); ``moved`` whether this plan
    moved the memory start forward (the caller should store it).
    """

    text: str
    messages: tuple[ChatMessage, ...]
    memory_start_id: int
    dropped: int
    n_tokens: int
    moved: bool = False


@dataclass(frozen=True)
class ContextUse:
    """How much of the model's context a reply uses and where its memory begins, for
    the user to see and for the store to keep."""

    memory_start_id: int  # the first stored message the model sees
    dropped: int  # stored messages before it, beyond the model's memory
    used_tokens: int
    n_ctx: int
    moved: bool = False  # the memory start moved forward for this reply

    @property
    def first_in_memory(self) -> int | None:
        """The first message the model sees, or None when it sees the whole branch."""
        return self.memory_start_id if self.dropped else None


def context_budget(n_ctx: int, max_tokens: int) -> int:
    """Tokens the prompt may use: the context minus room for the reply (at most half
    the context is reserved, so a large max_tokens cannot starve the history)."""
    return max(n_ctx - min(max_tokens, n_ctx // 2), 1)


def model_turns(messages: Sequence[Message]) -> list[ChatMessage]:
    """The stored messages as a turn sequence every chat template accepts: system
    messages left out (the conversation's system prompt is passed on its own), no reply
    before the first question, and user and assistant turns alternating.

    A failed reply, or one stopped before its first word, leaves two questions in a
    row; strict templates (Meta's Llama 2 one) refuse that, so they become one turn,
    separated by a blank line. Two replies in a row are joined the same way.
    """
    turns: list[ChatMessage] = []
    for message in messages:
        if message.role == Role.SYSTEM or (not turns and message.role != Role.USER):
            continue
        role = str(message.role)
        if turns and turns[-1]["role"] == role:
            turns[-1] = ChatMessage(role=role, content=f"{turns[-1]['content']}\n\n"
                                                       f"{message.content}")
        else:
            turns.append(ChatMessage(role=role, content=message.content))
    return turns


class _Planner:
    """One planning pass; caches token counts so each render is counted once."""

    def __init__(self, messages: list[Message], system: list[ChatMessage],
                 template: ChatTemplate, count_tokens: Callable[[str], int],
                 bos_token: str, eos_token: str, cancel: threading.Event | None) -> None:
        self.messages = messages
        self.cancel = cancel
        self.system = system
        self.template = template
        self.count_tokens = count_tokens
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._renders: dict[int, tuple[str, tuple[ChatMessage, ...], int]] = {}
        self._sizes: dict[int, int] = {}

    def render(self, start: int) -> tuple[str, tuple[ChatMessage, ...], int]:
        """The prompt made of the messages from ``start`` on, and its token count."""
        if start not in self._renders:
            chat = (*self.system, *model_turns(self.messages[start:]))
            text = self.template.render(chat, bos_token=self.bos_token,
                                        eos_token=self.eos_token, cancel=self.cancel)
            self._renders[start] = (text, chat, self.count_tokens(text))
        return self._renders[start]

    def earliest_within(self, budget: int, floor: int) -> int:
        """The earliest index from which the messages' own text fits ``budget``: no
        render from before it can fit, so no render is much longer than the budget,
        however long the chat."""
        lo, total = len(self.messages), 0
        while lo > floor:
            size = self._sizes.get(lo - 1)
            if size is None:
                size = self._sizes[lo - 1] = self.count_tokens(self.messages[lo - 1].content)
            if total + size > budget:
                break
            lo, total = lo - 1, total + size
        return lo

    def first_fitting(self, candidates: list[int], budget: int) -> int | None:
        """The first of ``candidates`` (ascending) whose render fits ``budget``, by
        bisection (fewer messages never take more tokens)."""
        best = None
        lo, hi = 0, len(candidates) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.render(candidates[mid])[2] <= budget:
                best, hi = candidates[mid], mid - 1
            else:
                lo = mid + 1
        return best


def plan_context(
    history: Sequence[Message],
    *,
    system_prompt: str,
    template: ChatTemplate,
    budget: int,
    count_tokens: Callable[[str], int],
    memory_start_id: int | None = None,
    bos_token: str = "",
    eos_token: str = "",
    keep: float = KEEP_AFTER_OVERFLOW,
    cancel: threading.Event | None = None,
) -> ContextPlan:
    """Plan the prompt for answering the end of ``history`` (the branch, oldest first).

    The system prompt is always in it, and whole messages only. The messages from
    ``memory_start_id`` (the stored start; None: the first message) on are kept while
    they fit ``budget`` tokens; when they no longer do, the start moves forward to the
    earliest user message from which the rest fits ``keep`` of the room the system
    prompt leaves (or to the newest question, if only that fits). Raises
    PromptTooLongError when even the newest question alone does not fit, and
    PromptError when there is nothing to answer. ``cancel`` (the user's Stop) reaches
    every render: a set flag raises ChatTemplateCancelled.
    """
    messages = [m for m in history if m.role != Role.SYSTEM]
    questions = [i for i, m in enumerate(messages) if m.role == Role.USER]
    if not questions:
        raise PromptError("There is no message to answer.")
    system = [ChatMessage(role="system", content=system_prompt)] if system_prompt.strip() else []
    planner = _Planner(messages, system, template, count_tokens, bos_token, eos_token, cancel)

    stored = next((i for i, m in enumerate(messages) if m.id == memory_start_id), 0)
    # The memory begins with a question: a stored start on a reply moves to the next one.
    start = next((i for i in questions if i >= stored), questions[-1])
    if planner.earliest_within(budget, start) <= start:
        text, chat, n_tokens = planner.render(start)
        if n_tokens <= budget:
            return _plan(messages, start, text, chat, n_tokens, memory_start_id)

    # Half of what the messages may use, besides the system prompt that is always there.
    fixed = min(count_tokens(system_prompt), budget) if system else 0
    target = max(int(fixed + keep * (budget - fixed)), 1)
    floor = planner.earliest_within(target, start)
    later = [i for i in questions if i > start and i >= floor]
    chosen = planner.first_fitting(later, target)
    if chosen is None:
        chosen = questions[-1]
        if planner.render(chosen)[2] > budget:
            raise PromptTooLongError(
                f"the message is too long for the model's context "
                f"({planner.render(chosen)[2]} tokens, room for {budget}); shorten it or "
                "raise the context length in the chat's settings")
    text, chat, n_tokens = planner.render(chosen)
    return _plan(messages, chosen, text, chat, n_tokens, memory_start_id)


def _plan(messages: list[Message], start: int, text: str, chat: tuple[ChatMessage, ...],
          n_tokens: int, stored_id: int | None) -> ContextPlan:
    first = messages[start].id
    return ContextPlan(text=text, messages=chat, memory_start_id=first, dropped=start,
                       n_tokens=n_tokens, moved=start > 0 and first != stored_id)
