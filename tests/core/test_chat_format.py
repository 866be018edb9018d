"""Chat templates: the fallback formats render the exact text each model family expects,
a model's own template is used when it works, and anything a template does wrong ends
as a ChatTemplateError, never as a raw Jinja exception."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import jinja2
import jinja2.sandbox
import pytest

from llamadesk.core.chat_format import (
    DEFAULT_FORMAT,
    FALLBACK_FORMATS,
    MAX_TEMPLATE_CHARS,
    ChatMessage,
    ChatTemplate,
    ChatTemplateCancelled,
    ChatTemplateError,
    ChatTemplateRefusal,
)

CONVERSATION: list[ChatMessage] = [
    ChatMessage(role="system", content="You are terse."),
    ChatMessage(role="user", content="Hi there"),
    ChatMessage(role="assistant", content="Hello."),
    ChatMessage(role="user", content="What is 2+2?"),
]

# Written out by hand from each family's published prompt format, with bos "<s>" and
# eos "</s>"; a generation prompt is asked for.
EXPECTED_WITH_GENERATION_PROMPT = {
    "chatml": (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    "llama-2": (
        "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello. </s>"
        "<s>[INST] What is 2+2? [/INST]"
    ),
    "mistral-instruct": (
        "<s>[INST] You are terse.\n\nHi there [/INST]Hello.</s>[INST] What is 2+2? [/INST]"
    ),
    "vicuna": (
        "You are terse.\n\nUSER: Hi there\nASSISTANT: Hello.</s>\nUSER: What is 2+2?\n"
        "ASSISTANT:"
    ),
    "alpaca": (
        "You are terse.\n\n### Instruction:\nHi there\n\n### Response:\nHello.\n\n"
        "### Instruction:\nWhat is 2+2?\n\n### Response:\n"
    ),
    "zephyr": (
        "<|system|>\nYou are terse.</s>\n<|user|>\nHi there</s>\n<|assistant|>\nHello.</s>\n"
        "<|user|>\nWhat is 2+2?</s>\n<|assistant|>\n"
    ),
}

# What each format looks like without the generation prompt. The [INST] formats have no
# separate one: the prompt already ends where the reply begins.
EXPECTED_WITHOUT_GENERATION_PROMPT = {
    "chatml": EXPECTED_WITH_GENERATION_PROMPT["chatml"].removesuffix(
        "<|im_start|>assistant\n"),
    "llama-2": EXPECTED_WITH_GENERATION_PROMPT["llama-2"],
    "mistral-instruct": EXPECTED_WITH_GENERATION_PROMPT["mistral-instruct"],
    "vicuna": EXPECTED_WITH_GENERATION_PROMPT["vicuna"].removesuffix("ASSISTANT:"),
    "alpaca": EXPECTED_WITH_GENERATION_PROMPT["alpaca"].removesuffix("### Response:\n"),
    "zephyr": EXPECTED_WITH_GENERATION_PROMPT["zephyr"].removesuffix("<|assistant|>\n"),
}

# SmolLM2-135M-Instruct's own template, as stored in the bundled GGUF.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
    "Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The shape of Gemma's template: no system role, and it says so.
NO_SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/"
    "assistant/...') }}{% endif %}"
    "{{ '<start_of_turn>' + message['role'] + '\n' + message['content'] | trim + "
    "'<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


def test_every_fallback_format_has_an_expected_rendering() -> None:
    assert set(FALLBACK_FORMATS) == set(EXPECTED_WITH_GENERATION_PROMPT)
    assert DEFAULT_FORMAT in FALLBACK_FORMATS


@pytest.mark.parametrize("name", sorted(EXPECTED_WITH_GENERATION_PROMPT))
def test_fallback_format_renders_exactly(name: str) -> None:
    template = ChatTemplate.named(name)
    assert template.name == name
    text = template.render(CONVERSATION, bos_token="<s>", eos_token="</s>")
    assert text == EXPECTED_WITH_GENERATION_PROMPT[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_WITHOUT_GENERATION_PROMPT))
def test_fallback_format_without_generation_prompt(name: str) -> None:
    text = ChatTemplate.named(name).render(CONVERSATION, bos_token="<s>", eos_token="</s>",
                                           add_generation_prompt=False)
    assert text == EXPECTED_WITHOUT_GENERATION_PROMPT[name]


@pytest.mark.parametrize(("name", "expected"), [
    ("chatml", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
    ("llama-2", "<s>[INST] Hi [/INST]"),
    ("mistral-instruct", "<s>[INST] Hi [/INST]"),
    ("vicuna", "USER: Hi\nASSISTANT:"),
    ("alpaca", "### Instruction:\nHi\n\n### Response:\n"),
    ("zephyr", "<|user|>\nHi</s>\n<|assistant|>\n"),
])
def test_fallback_format_without_a_system_message(name: str, expected: str) -> None:
    text = ChatTemplate.named(name).render([ChatMessage(role="user", content="Hi")],
                                           bos_token="<s>", eos_token="</s>")
    assert text == expected


def test_llama2_puts_the_system_prompt_in_the_first_turn_only() -> None:
    conversation = [*CONVERSATION, ChatMessage(role="assistant", content="4"),
                    ChatMessage(role="user", content="And 3+3?")]
    text = ChatTemplate.named("llama-2").render(conversation, bos_token="<s>",
                                                eos_token="</s>")
    assert text.count("<<SYS>>") == 1
    assert text.endswith("[/INST] 4 </s><s>[INST] And 3+3? [/INST]")


def test_llama2_trims_message_text() -> None:
    text = ChatTemplate.named("llama-2").render(
        [ChatMessage(role="user", content="  padded \n")], bos_token="<s>")
    assert text == "<s>[INST] padded [/INST]"


@pytest.mark.parametrize("name", sorted(FALLBACK_FORMATS))
def test_stop_strings_end_a_reply_before_the_next_turn(name: str) -> None:
    """If the model runs on past its reply, one of the stop strings shows up before it
    could write the user's next turn."""
    template = ChatTemplate.named(name)
    assert template.stop == FALLBACK_FORMATS[name].stop
    assert template.stop
    text = template.render(CONVERSATION, bos_token="<s>", eos_token="</s>")
    between = text[text.index("Hello.") + len("Hello."):text.index("What is 2+2?")]
    assert any(stop in between for stop in template.stop), (name, between)


def test_message_text_is_not_evaluated_as_a_template() -> None:
    content = "{{ 7 * 7 }} {% if true %}x{% endif %} {{ raise_exception('no') }}"
    text = ChatTemplate.named("chatml").render([ChatMessage(role="user", content=content)])
    assert content in text
    assert "49" not in text


def test_render_does_not_change_the_messages() -> None:
    messages = [dict(m) for m in CONVERSATION]
    ChatTemplate.named("llama-2").render(messages)  # type: ignore[arg-type]
    assert messages == [dict(m) for m in CONVERSATION]


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplate.named("llama-7")
    text = str(info.value)
    assert "'llama-7'" in text
    for name in FALLBACK_FORMATS:
        assert name in text


# -- the model's own template -----------------------------------------------------------------


def test_for_model_uses_a_valid_template(caplog: pytest.LogCaptureFixture) -> None:
    own = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
    with caplog.at_level(logging.WARNING):
        template = ChatTemplate.for_model(own)
    assert template.source == own
    assert template.name == "model's own"
    assert template.warning is None
    assert template.render(CONVERSATION[1:3]) == "[user]Hi there[assistant]Hello."
    assert not caplog.records


def test_real_smollm2_template_renders() -> None:
    template = ChatTemplate.for_model(SMOLLM2_TEMPLATE)
    assert template.warning is None
    assert template.render(CONVERSATION[:2]) == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # Without a system message the template supplies its own.
    assert template.render([ChatMessage(role="user", content="Hi")]) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
        "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_strftime_now_is_available_to_templates() -> None:
    before = datetime.now().strftime("%Y-%m-%d")
    text = ChatTemplate.for_model("Today: {{ strftime_now('%Y-%m-%d') }}").render([])
    after = datetime.now().strftime("%Y-%m-%d")
    assert text in (f"Today: {before}", f"Today: {after}")


@pytest.mark.parametrize("broken", [
    "{% for m in messages %}{{ m.content }}",  # no endfor
    "{{ messages[0] ",  # unclosed expression
    "{% if %}x{% endif %}",
    "{% frobnicate %}",
])
def test_for_model_falls_back_when_the_template_does_not_compile(
        broken: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llamadesk.core.chat_format"):
        template = ChatTemplate.for_model(broken, fallback="zephyr")
    assert template.name == "zephyr"
    assert template.source == FALLBACK_FORMATS["zephyr"].template
    assert template.stop == FALLBACK_FORMATS["zephyr"].stop
    assert template.warning is not None
    assert "does not compile" in template.warning
    assert "zephyr" in template.warning
    assert any("does not compile" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    # The fallback really is usable.
    assert template.render([ChatMessage(role="user", content="Hi")]) == (
        "<|user|>\nHi\n<|assistant|>\n")


@pytest.mark.parametrize("blank", [None, "", "   \n\t"])
def test_for_model_without_a_template_uses_the_fallback(
        blank: str | None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        default = ChatTemplate.for_model(blank)
        vicuna = ChatTemplate.for_model(blank, fallback="vicuna")
    assert default.name == DEFAULT_FORMAT
    assert default.warning is None
    assert vicuna.name == "vicuna"
    assert vicuna.source == FALLBACK_FORMATS["vicuna"].template
    assert not caplog.records


def test_for_model_with_an_unknown_fallback_raises() -> None:
    with pytest.raises(ChatTemplateError, match="unknown chat format"):
        ChatTemplate.for_model(None, fallback="nope")


def test_compile_error_is_a_chat_template_error() -> None:
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplate.compile("{% for %}", "custom")
    assert "custom" in str(info.value)
    assert isinstance(info.value.__cause__, jinja2.TemplateSyntaxError)


# -- failures while rendering ------------------------------------------------------------------


def test_raise_exception_becomes_a_chat_template_error() -> None:
    template = ChatTemplate.for_model(NO_SYSTEM_TEMPLATE)
    with pytest.raises(ChatTemplateError) as info:
        template.render(CONVERSATION)
    assert "System role not supported" in str(info.value)
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        template.render([ChatMessage(role="user", content="a"),
                         ChatMessage(role="user", content="b")])
    # And when the conversation suits it, it renders.
    assert template.render(CONVERSATION[1:], bos_token="<bos>") == (
        "<bos><start_of_turn>user\nHi there<end_of_turn>\n"
        "<start_of_turn>assistant\nHello.<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


@pytest.mark.parametrize(("source", "cause"), [
    ("{% set x = none %}{{ x.foo.bar }}", jinja2.UndefinedError),
    ("{{ messages[5].content.upper() }}", jinja2.UndefinedError),
    ("{{ no_such_variable.attribute }}", jinja2.UndefinedError),
    ("{{ messages[0].content + 1 }}", TypeError),
    ("{{ 1 / 0 }}", ZeroDivisionError),
])
def test_render_failure_is_a_chat_template_error(
        source: str, cause: type[BaseException]) -> None:
    template = ChatTemplate.compile(source, "model's own")
    with pytest.raises(ChatTemplateError) as info:
        template.render(CONVERSATION)
    assert "model's own chat template failed to render" in str(info.value)
    assert isinstance(info.value.__cause__, cause)


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__base__.__subclasses__() }}",
    "{{ raise_exception.__globals__.keys() }}",
    "{% set _ = messages.append({'role': 'user', 'content': 'x'}) %}",
    "{% set _ = messages[0].update({'role': 'x'}) %}",
])
def test_sandbox_blocks_unsafe_access(source: str) -> None:
    template = ChatTemplate.compile(source, "hostile")
    with pytest.raises(ChatTemplateError) as info:
        template.render(CONVERSATION)
    assert isinstance(info.value.__cause__, jinja2.sandbox.SecurityError)
    assert "unsafe" in str(info.value)


def test_sandbox_hides_dunder_attributes() -> None:
    text = ChatTemplate.compile("[{{ ''.__class__ }}]", "hostile").render([])
    assert text == "[]"


# -- a model's own template that breaks while rendering ----------------------------------------

NESTED_RANGES = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                 "{% endfor %}")


@pytest.mark.parametrize(("source", "reason"), [
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
    ("{{ raise_exception.__globals__.keys() }}", "unsafe"),
    ("{{ messages[0].content + 1 }}", "failed to render"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "failed to render"),
    (NESTED_RANGES, "ran past its budget"),
    ("{{ 'x' * 10**9 }}", "ran past its budget"),
])
def test_a_template_that_fails_while_rendering_is_replaced_by_the_fallback(
        source: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    template = ChatTemplate.for_model(source, fallback="zephyr")
    assert template.warning is None and template.name == "model's own"
    warnings: list[str] = []
    template.on_warning = warnings.append
    hi = [ChatMessage(role="user", content="Hi")]
    with caplog.at_level(logging.WARNING, logger="llamadesk.core.chat_format"):
        first = template.render(hi, eos_token="</s>")
        second = template.render(hi, eos_token="</s>")
    # The model still works, with the fallback chosen for it, from now on.
    assert first == second == "<|user|>\nHi</s>\n<|assistant|>\n"
    assert template.name == "zephyr"
    assert template.stop == FALLBACK_FORMATS["zephyr"].stop
    assert template.source == FALLBACK_FORMATS["zephyr"].template
    # Warned once: a readable reason, naming the format used instead.
    assert template.warning is not None
    assert reason in template.warning and "using the zephyr format instead" in template.warning
    assert warnings == [template.warning]
    assert [r.getMessage() for r in caplog.records] == [template.warning]


def test_a_refusal_of_the_conversation_is_not_a_broken_template() -> None:
    template = ChatTemplate.for_model(NO_SYSTEM_TEMPLATE, fallback="chatml")
    with pytest.raises(ChatTemplateRefusal, match="System role not supported"):
        template.render(CONVERSATION)
    assert template.name == "model's own"
    assert template.warning is None


def test_stop_during_rendering_cancels_without_replacing_the_template() -> None:
    template = ChatTemplate.for_model(NESTED_RANGES, fallback="chatml")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ChatTemplateCancelled):
        template.render(CONVERSATION, cancel=cancel)
    assert template.name == "model's own"
    assert template.warning is None


def test_a_template_without_a_fallback_that_runs_past_its_budget_is_an_error() -> None:
    template = ChatTemplate.compile(NESTED_RANGES, "model's own")
    with pytest.raises(ChatTemplateError, match="ran past its budget"):
        template.render(CONVERSATION)


def test_an_absurdly_long_template_is_not_compiled() -> None:
    huge = "{{ bos_token }}" + "x" * MAX_TEMPLATE_CHARS
    template = ChatTemplate.for_model(huge, fallback="vicuna")
    assert template.name == "vicuna"
    assert template.warning is not None and "characters long" in template.warning
