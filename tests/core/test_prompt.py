"""The context planner with a deterministic token count (whitespace-separated words), so
every decision can be checked exactly against a real render."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from llamadesk.core.chat_format import ChatMessage, ChatTemplate
from llamadesk.core.conversation import Message, Role
from llamadesk.core.prompt import (
    KEEP_AFTER_OVERFLOW,
    ContextPlan,
    PromptError,
    PromptTooLongError,
    context_budget,
    model_turns,
    plan_context,
)

CHATML = ChatTemplate.named("chatml")
U, A = Role.USER, Role.ASSISTANT


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


def chat_of(messages: Sequence[Message], system: str = "") -> list[ChatMessage]:
    head = [ChatMessage(role="system", content=system)] if system else []
    return head + [ChatMessage(role=str(m.role), content=m.content) for m in messages]


def real_tokens(messages: Sequence[Message], system: str = "",
                template: ChatTemplate = CHATML) -> int:
    """What the prompt made of exactly these messages costs."""
    return count_words(template.render(chat_of(messages, system)))


def plan_for(messages: Sequence[Message], budget: int, system: str = "",
             template: ChatTemplate = CHATML, start: int | None = None) -> ContextPlan:
    return plan_context(messages, system_prompt=system, template=template, budget=budget,
                        count_tokens=count_words, memory_start_id=start)


def assert_consistent(plan: ContextPlan, messages: Sequence[Message], budget: int,
                      system: str = "", template: ChatTemplate = CHATML) -> None:
    """The plan is the stored messages from its memory start, whole, rendered for real,
    within the budget, with the system prompt first."""
    kept = list(messages[plan.dropped:])
    assert kept[0].id == plan.memory_start_id
    assert list(plan.messages) == chat_of(kept, system)
    assert plan.text == template.render(chat_of(kept, system))
    assert plan.n_tokens == count_words(plan.text) <= budget


def alternating(n: int, words: int = 20) -> list[Message]:
    return history(*[(U if i % 2 == 0 else A, words) for i in range(n)])


def test_everything_fits() -> None:
    msgs = history((U, 5), (A, 7), (U, 3), (A, 4), (U, 6))
    plan = plan_for(msgs, budget=1000, system="Be kind.")
    assert plan.dropped == 0 and not plan.moved
    assert plan.memory_start_id == msgs[0].id
    assert plan.messages[0] == ChatMessage(role="system", content="Be kind.")
    assert_consistent(plan, msgs, 1000, "Be kind.")


def test_exactly_at_the_budget_fits() -> None:
    msgs = history((U, 5), (A, 7), (U, 3))
    exact = real_tokens(msgs)
    assert plan_for(msgs, budget=exact).dropped == 0
    assert plan_for(msgs, budget=exact - 1).dropped > 0


def test_an_overflow_moves_the_start_in_one_large_step() -> None:
    msgs = alternating(21)
    budget = 300
    assert real_tokens(msgs) > budget
    plan = plan_for(msgs, budget)
    assert plan.moved
    assert_consistent(plan, msgs, budget)
    # About half the budget is kept, as much as that allows, from a question on.
    half = int(budget * KEEP_AFTER_OVERFLOW)
    assert plan.n_tokens <= half
    fitting = [s for s in range(len(msgs))
               if msgs[s].role == U and real_tokens(msgs[s:]) <= half]
    assert plan.dropped == min(fitting)
    # A one-turn-at-a-time window would have kept far more.
    assert real_tokens(msgs[plan.dropped - 2:]) <= budget


def test_the_start_stays_fixed_until_the_history_overflows_again() -> None:
    """A conversation ten times longer than the budget, turn by turn, with the start
    stored between turns as the app does."""
    budget, system = 400, "You are terse."
    msgs: list[Message] = []
    start: int | None = None
    previous: ContextPlan | None = None
    moves = []
    for turn in range(130):
        msgs.append(Message(id=len(msgs) + 1, conversation_id=1, parent_id=len(msgs) or None,
                            role=U, content=text_of(12, f"q{turn}"), created_at=0.0))
        plan = plan_for(msgs, budget, system, start=start)
        assert_consistent(plan, msgs, budget, system)
        if plan.moved:
            # Only when the old start no longer fits, and then by a large step.
            old = next((i for i, m in enumerate(msgs) if m.id == start), 0)
            assert real_tokens(msgs[old:], system) > budget
            assert plan.n_tokens <= budget // 2 + count_words(system)
            moves.append(turn)
            start = plan.memory_start_id
        else:
            assert plan.memory_start_id == (start or msgs[0].id)
            # The same start: this prompt begins with the whole previous one, so the
            # context the model already holds is re-used.
            assert previous is None or plan.text.startswith(previous.text)
        previous = plan
        msgs.append(Message(id=len(msgs) + 1, conversation_id=1, parent_id=len(msgs),
                            role=A, content=text_of(18, f"a{turn}"), created_at=0.0))
    assert real_tokens(msgs, system) > 10 * budget
    assert 10 <= len(moves) <= 30, moves
    assert all(b - a >= 5 for a, b in itertools.pairwise(moves)), moves


def test_the_system_prompt_is_always_kept() -> None:
    system = text_of(50, "sys")
    msgs = alternating(31)
    plan = plan_for(msgs, 400, system)
    assert plan.moved
    assert plan.messages[0] == ChatMessage(role="system", content=system)
    assert_consistent(plan, msgs, 400, system)


def test_a_large_system_prompt_still_leaves_a_large_step() -> None:
    system = text_of(200, "sys")
    msgs = alternating(31)
    plan = plan_for(msgs, 400, system)
    assert_consistent(plan, msgs, 400, system)
    # Half of what is left beside the system prompt, not half of the whole budget.
    assert plan.n_tokens <= 200 + (400 - 200) // 2
    assert len(plan.messages) - 1 >= 3, "not just the newest question"


def test_system_prompt_counts_against_the_budget() -> None:
    """The system prompt is never dropped to make room: the message does not fit."""
    system = text_of(200, "sys")
    msgs = history((U, 10))
    assert real_tokens(msgs) <= 100 < real_tokens(msgs, system)
    with pytest.raises(PromptTooLongError):
        plan_for(msgs, budget=100, system=system)


def test_the_newest_question_alone_when_nothing_more_fits_half() -> None:
    msgs = history((U, 50), (A, 50), (U, 50), (A, 50), (U, 120))
    budget = 200
    assert budget // 2 < real_tokens(msgs[-1:]) <= budget
    plan = plan_for(msgs, budget)
    assert plan.dropped == 4 and plan.moved
    assert_consistent(plan, msgs, budget)


def test_the_newest_message_alone_too_long_raises() -> None:
    msgs = history((U, 10), (A, 10), (U, 1000))
    with pytest.raises(PromptTooLongError) as info:
        plan_for(msgs, budget=100)
    text = str(info.value)
    assert "too long" in text and "context" in text
    assert "100" in text  # the room there is
    assert str(real_tokens(msgs[2:])) in text  # what the message needs
    with pytest.raises(PromptTooLongError):
        plan_for(history((U, 50)), budget=10)


def test_a_stored_start_never_moves_back() -> None:
    msgs = alternating(11, words=5)
    plan = plan_for(msgs, budget=10_000, start=msgs[6].id)
    assert plan.dropped == 6 and not plan.moved
    assert plan.memory_start_id == msgs[6].id
    assert_consistent(plan, msgs, 10_000)


def test_a_stored_start_moves_forward_again_when_the_context_shrinks() -> None:
    msgs = alternating(21)
    wide = plan_for(msgs, budget=400)
    assert wide.moved
    narrow = plan_for(msgs, budget=120, start=wide.memory_start_id)
    assert narrow.moved and narrow.dropped > wide.dropped
    assert_consistent(narrow, msgs, 120)


def test_a_stored_start_on_another_branch_is_not_used() -> None:
    msgs = alternating(5, words=5)
    plan = plan_for(msgs, budget=1000, start=999)
    assert plan.dropped == 0 and not plan.moved


def test_a_stored_start_on_a_reply_moves_to_the_next_question() -> None:
    msgs = alternating(7, words=5)
    plan = plan_for(msgs, budget=1000, start=msgs[3].id)
    assert msgs[3].role == A
    assert plan.dropped == 4 and plan.memory_start_id == msgs[4].id and plan.moved


@pytest.mark.parametrize("spec", [[], [(A, 3)], [(Role.SYSTEM, 3)]])
def test_nothing_to_answer_is_a_clear_error(spec: list[tuple[Role, int]]) -> None:
    with pytest.raises(PromptError, match="no message"):
        plan_for(history(*spec), 100, system="You are terse.")


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_system_prompt_adds_no_system_message(blank: str) -> None:
    plan = plan_for(history((U, 3)), budget=100, system=blank)
    assert [m["role"] for m in plan.messages] == ["user"]
    assert "system" not in plan.text


def test_system_messages_in_the_history_are_left_out() -> None:
    msgs = history((Role.SYSTEM, 4), (U, 3), (A, 3), (U, 3))
    plan = plan_for(msgs, budget=1000, system="Current rules.")
    assert [m["role"] for m in plan.messages] == ["system", "user", "assistant", "user"]
    assert plan.messages[0]["content"] == "Current rules."
    assert msgs[0].content not in plan.text
    assert plan.dropped == 0


def test_template_with_a_large_overhead_per_message() -> None:
    """A template that costs far more per message than the estimate allows must still
    give a prompt within budget."""
    header = " ".join(["header"] * 20)
    wordy = ChatTemplate.compile(
        "{% for m in messages %}" + header + " {{ m.role }}: {{ m.content }}\n{% endfor %}",
        "wordy")
    msgs = alternating(9, words=10)
    plan = plan_for(msgs, 100, template=wordy)
    assert_consistent(plan, msgs, 100, template=wordy)
    assert msgs[plan.dropped].role is U


def test_renders_stay_short_however_long_the_chat() -> None:
    longest = [0]

    def counting(text: str) -> int:
        n = count_words(text)
        longest[0] = max(longest[0], n)
        return n

    msgs = alternating(5001)
    plan = plan_context(msgs, system_prompt="Hi.", template=CHATML, budget=500,
                        count_tokens=counting)
    assert plan.moved and plan.n_tokens <= 250
    assert longest[0] <= 2 * 500, "no render much longer than the budget"


def test_bos_and_eos_reach_the_template() -> None:
    llama2 = ChatTemplate.named("llama-2")
    msgs = history((U, 2), (A, 2), (U, 2))
    plan = plan_context(msgs, system_prompt="", template=llama2, budget=1000,
                        count_tokens=count_words, bos_token="<s>", eos_token="</s>")
    assert plan.text == llama2.render(chat_of(msgs), bos_token="<s>", eos_token="</s>")
    assert plan.text.count("<s>[INST]") == 2
    assert plan.text.count("</s>") == 1


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


# -- turn sequences ----------------------------------------------------------------------------


def test_two_questions_in_a_row_become_one_turn() -> None:
    msgs = history((U, 2), (U, 3), (A, 2), (U, 1))
    turns = model_turns(msgs)
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == f"{msgs[0].content}\n\n{msgs[1].content}"


def test_a_reply_before_the_first_question_is_left_out() -> None:
    msgs = history((A, 2), (A, 2), (U, 3), (A, 2), (A, 4))
    turns = model_turns(msgs)
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["content"] == f"{msgs[3].content}\n\n{msgs[4].content}"


def test_whole_messages_only_even_when_turns_are_joined() -> None:
    msgs = history((U, 30), (U, 30), (A, 30), (U, 30), (U, 30), (A, 30), (U, 30))
    plan = plan_for(msgs, budget=real_tokens(msgs) - 1)
    kept = msgs[plan.dropped:]
    assert plan.messages == tuple(model_turns(kept))
    joined = "\n\n".join(m["content"] for m in plan.messages)
    for message in kept:
        assert message.content in joined
