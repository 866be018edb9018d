"""The named chat formats (fallback templates for files without their own) and the
message shape templates expect: plain data, no Jinja, so the catalog, the registry and
the window can name formats without importing the template engine (``chat_format``
compiles and renders them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class ChatMessage(TypedDict):
    """The OpenAI-shaped message dict that chat templates expect."""

    role: str
    content: str


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
