"""The planner hands every chat template a turn sequence it accepts: branches with
stopped, failed and edited turns, rendered through Meta's official Llama 2 template
(strict about alternating roles) and through every fallback format."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama2_template import LLAMA2_OFFICIAL

from llamadesk.core.chat_format import (
    FALLBACK_FORMATS,
    ChatMessage,
    ChatTemplate,
    ChatTemplateError,
)
from llamadesk.core.conversation import FinishReason, Message, MessageStats, Role
from llamadesk.core.prompt import PromptTooLongError, plan_context
from llamadesk.core.store import ConversationStore

SYSTEM = "Be brief."
TEMPLATES = {"llama-2 (Meta's own)": ChatTemplate.compile(LLAMA2_OFFICIAL, "model's own"),
             **{name: ChatTemplate.named(name) for name in FALLBACK_FORMATS}}


def count_words(text: str) -> int:
    return len(text.split())


def messy_branch(tmp_path: Path) -> list[Message]:
    """A branch as the app leaves it: a reply stopped before its first word (nothing
    stored), a reply stopped half-way, a failed reply, an edited question whose answer
    failed, and the question being answered now."""
    store = ConversationStore(tmp_path / "chats.sqlite3")
    c = store.create_conversation(system_prompt=SYSTEM).id
    store.add_message(c, Role.USER, "Hello there, who are you?")
    store.add_message(c, Role.ASSISTANT, "I am a small model that runs on this computer.")
    store.add_message(c, Role.USER, "Tell me a story.")  # stopped before a word
    store.add_message(c, Role.USER, "Then a short poem.")
    store.add_message(c, Role.ASSISTANT, "Roses are", stats=MessageStats(
        finish_reason=FinishReason.STOPPED))
    original = store.add_message(c, Role.USER, "What is the capital of France?")
    store.add_message(c, Role.ASSISTANT, "Paris.")
    # Edited: a new version of the question, whose answer then failed.
    store.add_message(c, Role.USER, "What is the capital of Italy?",
                      parent_id=original.parent_id)
    store.add_message(c, Role.USER, "And of Spain?")
    branch = store.messages(c)
    store.close()
    return branch


def test_the_branch_really_has_questions_in_a_row(tmp_path: Path) -> None:
    roles = [m.role for m in messy_branch(tmp_path)]
    assert roles == [Role.USER, Role.ASSISTANT, Role.USER, Role.USER, Role.ASSISTANT,
                     Role.USER, Role.USER]
    official = TEMPLATES["llama-2 (Meta's own)"]
    raw = [ChatMessage(role="system", content=SYSTEM)] + [
        ChatMessage(role=str(m.role), content=m.content) for m in messy_branch(tmp_path)]
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        official.render(raw, bos_token="<s>", eos_token="</s>")


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_template_accepts_the_branch_at_every_budget(tmp_path: Path, name: str) -> None:
    template = TEMPLATES[name]
    branch = messy_branch(tmp_path)
    full = plan_context(branch, system_prompt=SYSTEM, template=template, budget=10_000,
                        count_tokens=count_words, bos_token="<s>", eos_token="</s>")
    assert full.dropped == 0
    seen_starts = set()
    for budget in range(10, full.n_tokens + 1):
        try:
            plan = plan_context(branch, system_prompt=SYSTEM, template=template,
                                budget=budget, count_tokens=count_words,
                                bos_token="<s>", eos_token="</s>")
        except ChatTemplateError:
            pytest.fail(f"{name} refused the plan at budget {budget}")
        except PromptTooLongError:  # the newest question alone not fitting is fine
            continue
        seen_starts.add(plan.dropped)
        roles = [m["role"] for m in plan.messages]
        assert roles[0] == "system"
        assert roles[1::2] == ["user"] * len(roles[1::2])
        assert roles[2::2] == ["assistant"] * len(roles[2::2])
        assert roles[-1] == "user"
        assert plan.text.count(SYSTEM) == 1, "the system prompt is always there, once"
    assert len(seen_starts) >= 3, "the budgets covered several memory starts"


def test_llama2_merges_the_system_prompt_into_the_first_question(tmp_path: Path) -> None:
    plan = plan_context(messy_branch(tmp_path), system_prompt=SYSTEM,
                        template=TEMPLATES["llama-2 (Meta's own)"], budget=10_000,
                        count_tokens=count_words, bos_token="<s>", eos_token="</s>")
    assert plan.text.startswith(f"<s>[INST] <<SYS>>\n{SYSTEM}\n<</SYS>>\n\nHello there")
    assert "Tell me a story.\n\nThen a short poem. [/INST] Roses are </s>" in plan.text
    assert plan.text.endswith("What is the capital of Italy?\n\nAnd of Spain? [/INST]")
