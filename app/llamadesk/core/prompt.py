"""Choose which messages go into the prompt, within the model's context budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llamadesk.core.chat_format import ChatMessage, ChatTemplate
from llamadesk.core.conversation import Message, Role


class PromptError(Exception):
    """The prompt cannot be built; the message says why."""


class PromptTooLongError(PromptError):
    """Even the newest message alone does not fit the context."""


@dataclass(frozen=True)
class PromptPlan:
    """The rendered prompt and what went into it."""

    text: str
    messages: tuple[ChatMessage, ...]
    dropped: int  # how many older messages did not fit
    n_tokens: int


def context_budget(n_ctx: int, max_tokens: int) -> int:
    """Tokens the prompt may use: the context minus room for the reply (at most half
    the context is reserved, so a large max_tokens cannot starve the history)."""
    return max(n_ctx - min(max_tokens, n_ctx // 2), 1)


def build_prompt(
    history: Sequence[Message],
    *,
    system_prompt: str,
    template: ChatTemplate,
    budget: int,
    count_tokens: Callable[[str], int],
    bos_token: str = "",
    eos_token: str = "",
) -> PromptPlan:
    """Render the system prompt and as many of the most recent messages as fit
    ``budget`` tokens. The last message (the one being answered) always goes in.

    Messages are dropped from the oldest end, in whole user/assistant turns where
    possible, so the prompt never starts with an orphaned reply.
    """
    turns = [ChatMessage(role=str(m.role), content=m.content) for m in history
             if m.role != Role.SYSTEM]
    if not turns:
        raise PromptError("There is no message to answer.")
    system = [ChatMessage(role="system", content=system_prompt)] if system_prompt.strip() else []

    def render(msgs: Sequence[ChatMessage]) -> tuple[str, int]:
        text = template.render([*system, *msgs], bos_token=bos_token, eos_token=eos_token)
        return text, count_tokens(text)

    # Most chats fit whole: one render and one count.
    text, n_tokens = render(turns)
    if n_tokens <= budget:
        return PromptPlan(text, (*system, *turns), 0, n_tokens)

    # Find the earliest message from which the rest fits, by bisection over real
    # renders (fewer messages never take more tokens). Per-message estimates bound the
    # search, so no render is much longer than the budget, whatever the chat's length.
    sizes = [count_tokens(m["content"]) for m in turns]
    lo, estimated = len(turns) - 1, sizes[-1]
    while lo > 0 and estimated + sizes[lo - 1] <= budget:
        lo -= 1
        estimated += sizes[lo]
    hi = len(turns) - 1
    last_text, last_tokens = render(turns[hi:])
    if last_tokens > budget:
        n_tokens = last_tokens
    else:
        best = (hi, last_text, last_tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            text, n_tokens = render(turns[mid:])
            if n_tokens <= budget:
                best, hi = (mid, text, n_tokens), mid
            else:
                lo = mid + 1
        start, text, n_tokens = best
        # Never open with a reply whose question was dropped.
        if turns[start]["role"] == "assistant" and start < len(turns) - 1:
            start += 1
            text, n_tokens = render(turns[start:])
        return PromptPlan(text, (*system, *turns[start:]), start, n_tokens)
    raise PromptTooLongError(
        f"the message is too long for the model's context ({n_tokens} tokens, room for "
        f"{budget}); shorten it or raise the context length in the chat's settings"
    )
