"""Tool calling through the local API on the bundled model given a Hermes-style chat
template that takes tools (the official ``openai`` client): a required call is one valid
call, its result goes back to the model, streamed calls arrive whole, and a model whose
template takes no tools answers 400."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from api_support import LiveApi
from gguf_tools import with_metadata

from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry

# ChatML, plus the tools and the <tool_call> markers of Hermes-style templates.
HERMES_TOOLS = (
    "{%- if tools %}<|im_start|>system\n"
    "{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "You may call these functions. For each call, answer with <tool_call>\n"
    "{\"name\": <name>, \"arguments\": <arguments>}\n</tool_call>\n<tools>\n"
    "{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools><|im_end|>\n"
    "{%- elif messages[0].role == 'system' %}<|im_start|>system\n"
    "{{ messages[0].content }}<|im_end|>\n{% endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n"
    "{{ message.content }}\n</tool_response><|im_end|>\n"
    "{%- elif message.tool_calls %}<|im_start|>assistant\n"
    "{% for call in message.tool_calls %}<tool_call>\n"
    "{{ {'name': call.function.name, 'arguments': call.function.arguments} | tojson }}\n"
    "</tool_call>{% endfor %}<|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "maxLength": 24}}}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a city now.",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "maxLength": 24}}}}}
ASK = [{"role": "user", "content": "What is the weather in Lisbon?"}]


@pytest.fixture
def tool_model(api: LiveApi, bundled_model_path: Path, tmp_path: Path) -> str:
    path = with_metadata(bundled_model_path, tmp_path / "tools.gguf",
                         {"tokenizer.chat_template": HERMES_TOOLS})
    return ModelRegistry(app_paths().ensure()).import_file(path, link=True,
                                                           name="Tool model").id


def test_a_required_call_is_one_valid_call(api: LiveApi, tool_model: str) -> None:
    reply = api.client().chat.completions.create(
        model=tool_model, messages=ASK, tools=[WEATHER], tool_choice="required",
        temperature=0, max_tokens=60)  # type: ignore[list-item]
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function" and calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(calls[0].function.arguments)  # type: ignore[union-attr]
    assert isinstance(arguments["city"], str) and len(arguments["city"]) <= 24


def test_a_named_function_is_the_one_called(api: LiveApi, tool_model: str) -> None:
    reply = api.client().chat.completions.create(
        model=tool_model, messages=ASK, tools=[WEATHER, TIME], temperature=0, max_tokens=60,
        tool_choice={"type": "function", "function": {"name": "get_time"}})  # type: ignore[list-item]
    calls = reply.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_time"  # type: ignore[union-attr]


def test_the_result_goes_back_to_the_model(api: LiveApi, tool_model: str) -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Lisbon"})}}

    def answer(result: dict[str, object]) -> tuple[str | None, int]:
        """The reply to the conversation with ``result`` as the tool's answer, and the
        prompt's length in tokens."""
        reply = api.client().chat.completions.create(
            model=tool_model, tools=[WEATHER], temperature=0, max_tokens=16,  # type: ignore[list-item]
            messages=[*ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
                      {"role": "tool", "tool_call_id": "call_1",
                       "content": json.dumps(result)}])  # type: ignore[list-item]
        choice = reply.choices[0]
        assert choice.finish_reason in ("stop", "length", "tool_calls")
        assert reply.usage is not None
        return choice.message.content, reply.usage.prompt_tokens

    short = answer({"sky": "sunny", "celsius": 21})
    long = answer({"sky": "sunny with a light breeze from the north-west over the river",
                   "celsius": 21, "humidity": 40, "uv_index": 6})
    # The tool's result is part of the prompt the model answers: a longer one, a longer prompt.
    assert long[1] > short[1]


def test_streamed_calls_arrive_whole(api: LiveApi, tool_model: str) -> None:
    chunks = list(api.client().chat.completions.create(
        model=tool_model, messages=ASK, tools=[WEATHER], tool_choice="required",
        temperature=0, max_tokens=60, stream=True))  # type: ignore[list-item]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [call for d in deltas for call in (d.tool_calls or [])]
    assert len(calls) == 1 and calls[0].index == 0
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments or "{}")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_tools_for_a_template_without_them_are_a_clear_400(api: LiveApi) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        api.client().chat.completions.create(model=api.model_id, messages=ASK,
                                             tools=[WEATHER])  # type: ignore[list-item]
    body = refused.value.body
    assert isinstance(body, dict) and body["param"] == "tools"
    assert body["code"] == "tools_not_supported" and "does not take tools" in body["message"]
