"""OpenAI requests to engine requests, without a model: the window's sampling fields,
the API's constraints, and clear errors for what is not supported."""

from __future__ import annotations

from typing import Any

import pytest

from llamadesk.api.convert import (
    CONVERSATION_KEY,
    UNLIMITED_TOKENS,
    chat_request,
    completion_request,
)
from llamadesk.api.errors import ApiError, from_engine
from llamadesk.api.schemas import ChatCompletionRequest, CompletionRequest
from llamadesk.core.conversation import Role
from llamadesk.services.constraints import compile_grammar
from llamadesk.services.engine import ContextFullError, EngineError
from llamadesk.services.inference import ModelLoadError


def chat(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def test_messages_become_a_history_and_a_system_prompt() -> None:
    request = chat_request(chat(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
        {"role": "developer", "content": "Be kind."},
        {"role": "user", "content": "d"},
    ]))
    assert request.system_prompt == "Be brief.\n\nBe kind."
    assert [(m.role, m.content) for m in request.history] == [
        (Role.USER, "ab"), (Role.ASSISTANT, "c"), (Role.USER, "d")]
    assert [m.parent_id for m in request.history] == [None, 1, 2]
    assert request.conversation_key == CONVERSATION_KEY


def test_openai_defaults_and_fields_reach_the_sampling() -> None:
    default = chat_request(chat())
    assert default.params.temperature == 1.0 and default.params.top_p == 1.0
    assert default.params.max_tokens == UNLIMITED_TOKENS and default.params.seed == -1
    assert default.params.top_k == 0 and default.params.repeat_penalty == 1.0
    assert default.constraints is not None and default.constraints.grammar is None
    chosen = chat_request(chat(temperature=0.2, top_p=0.5, seed=-5, max_tokens=9,
                               max_completion_tokens=7, stop="END",
                               frequency_penalty=0.5, presence_penalty=-0.5))
    assert chosen.params.temperature == 0.2 and chosen.params.top_p == 0.5
    assert chosen.params.max_tokens == 7, "max_completion_tokens wins"
    assert chosen.params.seed >= 0
    assert chosen.constraints is not None
    assert chosen.constraints.stop == ("END",)
    assert chosen.constraints.frequency_penalty == 0.5
    assert chosen.constraints.presence_penalty == -0.5


def test_response_formats_become_grammars_that_compile() -> None:
    for response_format in (
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                "type": "object", "properties": {"a": {"type": "array",
                                                       "items": {"type": "number"}}}}}}):
        request = chat_request(chat(response_format=response_format))
        assert request.constraints is not None and request.constraints.grammar
        assert compile_grammar(request.constraints.grammar) is not None
    assert chat_request(chat(response_format={"type": "text"})).constraints.grammar is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("fields", "param"), [
    ({"n": 3}, "n"),
    ({"tools": [{"type": "function"}]}, "tools[0]"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "always"},
     "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logit_bias": {"1": 5}}, "logit_bias"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "messages[0].content"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format"),
])
def test_what_cannot_be_honoured_is_a_400(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as info:
        chat_request(chat(**fields))
    assert info.value.status == 400 and info.value.param == param
    assert info.value.body()["error"]["message"]


def test_tools_and_tool_messages_go_to_the_template_whole() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "integer"}}}}}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    request = chat_request(chat(tools=[tool], tool_choice="required", messages=[
        {"role": "user", "content": "Go"}, {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"}]))
    assert request.constraints is not None
    tool_chat = request.constraints.tool_chat
    assert tool_chat is not None and tool_chat.tools == (tool,)
    assert tool_chat.messages == (
        {"role": "user", "content": "Go"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
        {"role": "tool", "content": "done", "tool_call_id": "c1"})
    assert tool_chat.required is not None and tool_chat.required["anyOf"][0]["properties"][
        "name"] == {"const": "f"}
    # The words alone are what a kept conversation holds.
    assert [m.content for m in request.history] == ["Go"]
    plain = chat_request(chat(tools=[tool]))
    assert plain.constraints is not None and plain.constraints.tool_chat is not None
    assert plain.constraints.tool_chat.required is None, "auto: the model may answer in words"


def test_a_completion_is_its_prompt_as_it_is() -> None:
    request = completion_request(CompletionRequest.model_validate(
        {"model": "m", "prompt": ["Once upon"], "stop": ["\n"]}))
    assert request.history == () and request.constraints is not None
    assert request.constraints.raw_prompt == "Once upon"
    assert request.params.max_tokens == 16, "OpenAI's default for completions"
    with pytest.raises(ApiError):
        completion_request(CompletionRequest.model_validate(
            {"model": "m", "prompt": ["a", "b"]}))
    with pytest.raises(ApiError):
        completion_request(CompletionRequest.model_validate(
            {"model": "m", "prompt": "a", "echo": True}))


def test_engine_failures_get_openai_statuses() -> None:
    load = from_engine(ModelLoadError("the file is damaged"))
    assert load.status == 500 and load.code == "model_load_failed"
    assert "the file is damaged" in load.message
    full = from_engine(ContextFullError("full", n_prompt=3000, n_ctx=2048))
    assert full.status == 400 and full.code == "context_length_exceeded"
    assert "3000" in full.message and "2048" in full.message
    other = from_engine(EngineError("llama.cpp failed"))
    assert other.status == 500 and other.body()["error"]["type"] == "server_error"
