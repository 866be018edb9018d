"""build_prompt and context_budget with a deterministic token count (whitespace-separated
words), so every budget decision can be checked exactly against a real render."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llamadesk.core.chat_format import ChatMessage, ChatTemplate
from llamadesk.core.conversation import Message, Role
from llamadesk.core.prompt import PromptPlan, PromptTooLongError, build_prompt, context_budget

CHATML = ChatTemplate.named("chatml")


def count_words(text: str) -> int:
    """The stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def text_of(n_words: int, tag: str) -> str:
    return " ".join(f"{tag}w{i}" for i in range(n_words))


def history(*spec: tuple[Role, int]) -> list[Message]:
    """Messages of the given roles and word counts, each answering the one before."""
    out: list[Message] = []
    for i, (role, n_words) in enumerate(spec, start=1):
        out.append(Message(id=i, conversation_id=1, parent_id=i - 1 or None, role=role,
                           content=text_of(n_words, f"m{i}"), created_at=float(i)))
    return out


def as_chat(messages: Sequence[Message], system: str = "") -> list[ChatMessage]:
    head = [ChatMessage(role="system", content=system)] if system else []
    return head + [ChatMessage(role=str(m.role), content=m.content) for m in messages]


def real_tokens(messages: Sequence[Message], system: str = "",
                template: ChatTemplate = CHATML) -> int:
    """What the prompt made of exactly these messages costs."""
    return count_words(template.render(as_chat(messages, system)))


def plan_for(messages: Sequence[Message], budget: int, system: str = "",
             template: ChatTemplate = CHATML) -> PromptPlan:
    return build_prompt(messages, system_prompt=system, template=template, budget=budget,
                        count_tokens=count_words)


def assert_plan_is_consistent(plan: PromptPlan, messages: Sequence[Message], budget: int,
                              system: str = "", template: ChatTemplate = CHATML) -> None:
    """The plan is a suffix of the history, rendered for real, within the budget."""
    kept = messages[plan.dropped:]
    assert list(plan.messages) == as_chat(kept, system)
    assert plan.text == template.render(as_chat(kept, system))
    assert plan.n_tokens == count_words(plan.text)
    assert plan.n_tokens <= budget


U, A = Role.USER, Role.ASSISTANT
FIVE_LONG = [(U, 100), (A, 100), (U, 100), (A, 100), (U, 100)]


def test_everything_fits() -> None:
    msgs = history((U, 5), (A, 7), (U, 3), (A, 4), (U, 6))
    plan = plan_for(msgs, budget=1000, system="Be kind.")
    assert plan.dropped == 0
    assert len(plan.messages) == 6
    assert plan.messages[0] == ChatMessage(role="system", content="Be kind.")
    assert_plan_is_consistent(plan, msgs, 1000, "Be kind.")


def test_exactly_at_the_budget_fits() -> None:
    msgs = history((U, 5), (A, 7), (U, 3))
    exact = real_tokens(msgs)
    assert plan_for(msgs, budget=exact).dropped == 0
    assert plan_for(msgs, budget=exact - 1).dropped > 0


def test_drops_the_oldest_messages_first() -> None:
    msgs = history(*FIVE_LONG)
    budget = 350
    # Three messages fit and four do not, whatever the method of choosing.
    assert real_tokens(msgs[2:]) <= budget < real_tokens(msgs[1:])
    plan = plan_for(msgs, budget)
    assert plan.dropped == 2
    assert [m["content"] for m in plan.messages] == [m.content for m in msgs[2:]]
    assert_plan_is_consistent(plan, msgs, budget)


def test_never_starts_with_an_orphaned_reply() -> None:
    msgs = history(*FIVE_LONG)
    budget = 250
    # The last two (a reply and the question) would fit, but the reply would be
    # answering a question the model cannot see.
    assert real_tokens(msgs[3:]) <= budget < real_tokens(msgs[2:])
    plan = plan_for(msgs, budget)
    assert plan.dropped == 4
    assert [m["role"] for m in plan.messages] == ["user"]
    assert_plan_is_consistent(plan, msgs, budget)


def test_last_message_goes_in_even_when_it_is_a_reply() -> None:
    """Continuing a reply: the last message is the assistant's, and it stays."""
    msgs = history((U, 100), (A, 100), (U, 100), (A, 100))
    plan = plan_for(msgs, budget=150)
    assert plan.dropped == 3
    assert [m["role"] for m in plan.messages] == ["assistant"]
    assert_plan_is_consistent(plan, msgs, 150)


def test_last_message_alone_too_long_raises() -> None:
    msgs = history((U, 10), (A, 10), (U, 1000))
    with pytest.raises(PromptTooLongError) as info:
        plan_for(msgs, budget=100)
    text = str(info.value)
    assert "too long" in text
    assert "100" in text  # the room there is
    assert str(real_tokens(msgs[2:])) in text  # what the message needs
    assert "context" in text


def test_only_message_too_long_raises() -> None:
    with pytest.raises(PromptTooLongError):
        plan_for(history((U, 50)), budget=10)


def test_the_system_prompt_is_always_kept() -> None:
    system = text_of(50, "sys")
    msgs = history(*FIVE_LONG)
    budget = 400
    assert real_tokens(msgs[2:], system) <= budget < real_tokens(msgs[1:], system)
    plan = plan_for(msgs, budget, system)
    assert plan.messages[0] == ChatMessage(role="system", content=system)
    assert plan.dropped == 2
    assert_plan_is_consistent(plan, msgs, budget, system)


def test_system_prompt_counts_against_the_budget() -> None:
    """The system prompt is never dropped to make room: the message does not fit."""
    system = text_of(200, "sys")
    msgs = history((U, 10))
    assert real_tokens(msgs) <= 100 < real_tokens(msgs, system)
    with pytest.raises(PromptTooLongError):
        plan_for(msgs, budget=100, system=system)


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_system_prompt_adds_no_system_message(blank: str) -> None:
    msgs = history((U, 3))
    plan = plan_for(msgs, budget=100, system=blank)
    assert [m["role"] for m in plan.messages] == ["user"]
    assert "system" not in plan.text


def test_system_messages_in_the_history_are_left_out() -> None:
    """The conversation's system prompt is the one that counts; stored system messages
    are not sent a second time."""
    msgs = history((Role.SYSTEM, 4), (U, 3), (A, 3), (U, 3))
    plan = plan_for(msgs, budget=1000, system="Current rules.")
    assert [m["role"] for m in plan.messages] == ["system", "user", "assistant", "user"]
    assert plan.messages[0]["content"] == "Current rules."
    assert msgs[0].content not in plan.text
    assert plan.dropped == 0


def test_template_with_a_large_overhead_per_message() -> None:
    """A template that costs far more per message than the estimate allows must still
    produce a prompt within budget, and the longest one that fits."""
    header = " ".join(["header"] * 20)
    wordy = ChatTemplate.compile(
        "{% for m in messages %}" + header + " {{ m.role }}: {{ m.content }}\n{% endfor %}",
        "wordy")
    msgs = history(*[(U if i % 2 == 0 else A, 10) for i in range(9)])
    budget = 100
    plan = plan_for(msgs, budget, template=wordy)
    assert_plan_is_consistent(plan, msgs, budget, template=wordy)
    kept = msgs[plan.dropped:]
    assert kept[0].role is U
    # Nothing longer that starts with a question would have fitted.
    for start in range(plan.dropped):
        if msgs[start].role is U:
            assert real_tokens(msgs[start:], template=wordy) > budget


def test_bos_and_eos_reach_the_template() -> None:
    llama2 = ChatTemplate.named("llama-2")
    msgs = history((U, 2), (A, 2), (U, 2))
    plan = build_prompt(msgs, system_prompt="", template=llama2, budget=1000,
                        count_tokens=count_words, bos_token="<s>", eos_token="</s>")
    assert plan.text == llama2.render(as_chat(msgs), bos_token="<s>", eos_token="</s>")
    assert plan.text.count("<s>[INST]") == 2
    assert plan.text.count("</s>") == 1


def test_invariants_hold_for_every_budget() -> None:
    sizes = [3, 40, 7, 25, 60, 2, 15, 33, 8, 12, 1]
    msgs = history(*[(U if i % 2 == 0 else A, n) for i, n in enumerate(sizes)])
    system = "Stay on topic please."
    full = real_tokens(msgs, system)
    last_alone = real_tokens(msgs[-1:], system)
    previous_kept = 0
    for budget in range(1, full + 3):
        try:
            plan = plan_for(msgs, budget, system)
        except PromptTooLongError:
            assert budget < last_alone
            continue
        assert budget >= last_alone
        assert_plan_is_consistent(plan, msgs, budget, system)
        kept = msgs[plan.dropped:]
        assert kept[-1] == msgs[-1]
        assert kept[0].role is U or len(kept) == 1
        assert len(kept) >= previous_kept  # more room never means less history
        previous_kept = len(kept)
        if budget >= full:
            assert plan.dropped == 0


# -- context_budget --------------------------------------------------------------------------


@pytest.mark.parametrize(("n_ctx", "max_tokens", "expected"), [
    (4096, 512, 3584),
    (4096, 2048, 2048),
    (4096, 4000, 2048),  # the reply may reserve at most half
    (4096, 100_000, 2048),
    (2048, 0, 2048),
    (8192, 1, 8191),
    (4097, 4097, 2049),  # half rounds down, so the prompt gets the odd token
    (1, 1, 1),
    (0, 0, 1),  # never zero or negative
])
def test_context_budget(n_ctx: int, max_tokens: int, expected: int) -> None:
    assert context_budget(n_ctx, max_tokens) == expected


def test_context_budget_keeps_at_least_half() -> None:
    for n_ctx in (256, 512, 1000, 4096, 32768):
        for max_tokens in (0, 1, 100, n_ctx // 2 - 1, n_ctx // 2, n_ctx, 10 * n_ctx):
            budget = context_budget(n_ctx, max_tokens)
            assert budget >= n_ctx - n_ctx // 2
            assert budget + min(max_tokens, n_ctx // 2) == n_ctx


def test_keeps_the_longest_suffix_that_really_fits() -> None:
    # Five 100-word turns: the last three (a user turn first) fit 305 tokens exactly as
    # rendered, so nothing more than the first two may be dropped.
    messages = history(*FIVE_LONG)
    budget = real_tokens(messages[2:])
    assert budget < real_tokens(messages[1:])
    plan = plan_for(messages, budget)
    assert plan.dropped == 2
    assert_plan_is_consistent(plan, messages, budget)


def test_the_fullest_fit_for_every_budget() -> None:
    messages = history(*FIVE_LONG, (A, 30), (U, 5))
    for budget in range(real_tokens(messages[-1:]), real_tokens(messages) + 1):
        plan = plan_for(messages, budget)
        fitting = [s for s in range(len(messages))
                   if real_tokens(messages[s:]) <= budget
                   and (messages[s].role == U or s == len(messages) - 1)]
        assert plan.dropped == min(fitting), budget


def test_an_empty_history_is_a_clear_error() -> None:
    from llamadesk.core.prompt import PromptError

    with pytest.raises(PromptError, match="no message"):
        plan_for([], 100, system="You are terse.")
