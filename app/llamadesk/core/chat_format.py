"""Chat templates: turn a list of messages into the prompt text a model expects.

A GGUF usually carries its own Jinja template (``tokenizer.chat_template``); we render it
in a sandbox, as llama-cpp-python and Hugging Face do. Files without one (or with one
that does not compile) use a named fallback format from the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger(__name__)


class ChatMessage(TypedDict):
    """The OpenAI-shaped message dict that chat templates expect."""

    role: str
    content: str


class ChatTemplateError(Exception):
    """A chat template could not be compiled or rendered."""


_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_LLAMA2 = (
    "{% if messages and messages[0].role == 'system' %}"
    "{% set sys = '<<SYS>>\\n' + messages[0].content + '\\n<</SYS>>\\n\\n' %}"
    "{% set msgs = messages[1:] %}{% else %}{% set sys = '' %}{% set msgs = messages %}"
    "{% endif %}{% for m in msgs %}{% if m.role == 'user' %}"
    "{{ bos_token }}[INST] {% if loop.first %}{{ sys }}{% endif %}{{ m.content | trim }} [/INST]"
    "{% else %} {{ m.content | trim }} {{ eos_token }}{% endif %}{% endfor %}"
)
# A namespace, because a plain {% set %} inside a loop is gone by the next iteration.
_MISTRAL = (
    "{{ bos_token }}{% set ns = namespace(sys='') %}{% for m in messages %}"
    "{% if m.role == 'system' %}{% set ns.sys = m.content + '\\n\\n' %}"
    "{% elif m.role == 'user' %}[INST] {{ ns.sys if loop.index <= 2 else '' }}"
    "{{ m.content | trim }} [/INST]{% else %}{{ m.content | trim }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)
_VICUNA = (
    "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n\n"
    "{% elif m.role == 'user' %}USER: {{ m.content }}\n"
    "{% else %}ASSISTANT: {{ m.content }}{{ eos_token }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_ALPACA = (
    "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n\n"
    "{% elif m.role == 'user' %}### Instruction:\n{{ m.content }}\n\n"
    "{% else %}### Response:\n{{ m.content }}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}### Response:\n{% endif %}"
)
_ZEPHYR = (
    "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class FallbackFormat:
    """A named chat format for files without a template of their own."""

    name: str
    template: str
    stop: tuple[str, ...] = ()


FALLBACK_FORMATS: dict[str, FallbackFormat] = {
    f.name: f
    for f in (
        FallbackFormat("chatml", _CHATML, ("<|im_end|>", "<|im_start|>")),
        FallbackFormat("llama-2", _LLAMA2, ("[INST]",)),
        FallbackFormat("mistral-instruct", _MISTRAL, ("[INST]",)),
        FallbackFormat("vicuna", _VICUNA, ("\nUSER:",)),
        FallbackFormat("alpaca", _ALPACA, ("### Instruction:", "\n### ")),
        FallbackFormat("zephyr", _ZEPHYR, ("<|user|>", "</s>")),
    )
}
DEFAULT_FORMAT = "chatml"


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"the chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


_ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                     loader=jinja2.BaseLoader())
_ENV.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)


@dataclass(frozen=True)
class ChatTemplate:
    """A compiled chat template plus the stop strings that end a reply."""

    source: str
    name: str
    stop: tuple[str, ...] = ()
    warning: str | None = None
    _compiled: jinja2.Template = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @classmethod
    def compile(cls, source: str, name: str, stop: Sequence[str] = ()) -> ChatTemplate:
        """Compile ``source``; raise ChatTemplateError with a readable reason."""
        try:
            compiled = _ENV.from_string(source)
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"the {name} chat template does not compile: {exc}") from exc
        return cls(source=source, name=name, stop=tuple(stop), _compiled=compiled)

    @classmethod
    def named(cls, format_name: str) -> ChatTemplate:
        """A fallback format by name (unknown names raise ChatTemplateError)."""
        fmt = FALLBACK_FORMATS.get(format_name)
        if fmt is None:
            known = ", ".join(sorted(FALLBACK_FORMATS))
            raise ChatTemplateError(f"unknown chat format {format_name!r} (known: {known})")
        return cls.compile(fmt.template, fmt.name, fmt.stop)

    @classmethod
    def for_model(cls, gguf_template: str | None, fallback: str = DEFAULT_FORMAT) -> ChatTemplate:
        """The model's own template if it has a usable one, else the fallback format.

        A template that does not compile is not fatal: the chat still works with the
        fallback, and ``warning`` says why so the UI can tell the user.
        """
        if gguf_template and gguf_template.strip():
            try:
                return cls.compile(gguf_template, "model's own")
            except ChatTemplateError as exc:
                log.warning("%s; using the %s format instead", exc, fallback)
                template = cls.named(fallback)
                return ChatTemplate(template.source, template.name, template.stop,
                                    f"{exc}; using the {fallback} format instead",
                                    template._compiled)
        return cls.named(fallback)

    def render(
        self,
        messages: Sequence[ChatMessage],
        *,
        bos_token: str = "",
        eos_token: str = "",
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt text for ``messages``."""
        context: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "bos_token": bos_token,
            "eos_token": eos_token,
            "add_generation_prompt": add_generation_prompt,
        }
        try:
            return self._compiled.render(**context)
        except ChatTemplateError:
            raise
        except Exception as exc:  # jinja raises many types from user-supplied templates
            raise ChatTemplateError(
                f"the {self.name} chat template failed to render: {exc}") from exc
