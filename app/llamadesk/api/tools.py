"""Tool calling for chat completions: the request's messages and tools as the model's
own chat template takes them, a grammar when a call is required, and the reply's calls
read back into OpenAI's ``tool_calls``.

Models write calls in one of two ways, both read here: Hermes-style
``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` blocks (Qwen, Hermes and many
fine-tunes; the template says so by mentioning ``<tool_call>``), or a bare JSON object
``{"name": …, "arguments"|"parameters": {…}}`` (Llama 3.1 and others). When the request
requires a call (``tool_choice`` "required" or a named function), a grammar makes the
reply one such call, in the template's own style.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from llamadesk.api.errors import ApiError, unsupported
from llamadesk.api.schemas import ChatCompletionRequest, ChatMessageIn, FunctionCall, ToolCall
from llamadesk.services.engine_types import ToolChat
from llamadesk.services.json_grammar import json_schema_grammar

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def tool_chat(body: ChatCompletionRequest, text_of: Any) -> ToolChat:
    """The messages (tool calls and results included) and tools of a request that has
    tools or tool messages. ``text_of(message, index)`` reads a message's text."""
    if body.functions:
        raise unsupported("functions", "The old functions field is not supported; send "
                          "the same definitions as tools.")
    tools = tuple(_tool(t, i) for i, t in enumerate(body.tools or []))
    messages = tuple(_message(m, i, text_of) for i, m in enumerate(body.messages))
    return ToolChat(messages=messages, tools=tools, required=required_call(body))


def _tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict) \
            or not isinstance(function.get("name"), str):
        raise ApiError(400, f"tools[{index}] must be {{\"type\": \"function\", "
                       "\"function\": {\"name\": …}}.", param=f"tools[{index}]")
    return tool


def _message(message: ChatMessageIn, index: int, text_of: Any) -> dict[str, Any]:
    if message.role == "function":
        raise unsupported(f"messages[{index}].role", "Function messages are not "
                          "supported; send tool messages.")
    role = "system" if message.role == "developer" else message.role
    content = text_of(message, index) if message.content is not None or \
        not message.tool_calls else ""
    out: dict[str, Any] = {"role": role, "content": content}
    if message.tool_calls:
        # Templates read the arguments as an object (Hermes, Llama 3.1); OpenAI sends text.
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.function.name, "arguments": _arguments(c.function.arguments)}}
            for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def required_call(body: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON schema of the one call the reply must be, when the request requires a
    call; None when the model may answer in words (``auto``, ``none`` or no choice). The
    engine turns it into a grammar in the template's own style."""
    choice = body.tool_choice
    tools = [t["function"] for t in body.tools or []]
    if choice in (None, "auto", "none"):
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [f for f in tools if f.get("name") == wanted]
        if not tools:
            raise ApiError(400, f"tool_choice names {wanted!r}, which is not among the "
                           "tools.", param="tool_choice")
    elif choice != "required":
        raise ApiError(400, f"tool_choice {choice!r} is not one of none, auto, required "
                       "or a named function.", param="tool_choice")
    if not tools:
        raise ApiError(400, "tool_choice requires a call, but there are no tools.",
                       param="tool_choice")
    schema: dict[str, Any] = {"anyOf": [{
        "type": "object",
        "properties": {"name": {"const": f["name"]},
                       "arguments": f.get("parameters") or {"type": "object"}},
        "required": ["name", "arguments"]} for f in tools]}
    try:
        json_schema_grammar(schema)  # refused here, as a 400, rather than on the worker
    except ValueError as exc:
        raise ApiError(400, f"tools: {exc}", param="tools") from exc
    return schema


def read_calls(text: str) -> tuple[str | None, list[ToolCall]]:
    """The reply's words (None when it is only calls) and the calls it makes."""
    calls: list[ToolCall] = []
    blocks = _BLOCK.findall(text)
    if blocks:
        for block in blocks:
            call = _call(block)
            if call is not None:
                calls.append(call)
        rest = _BLOCK.sub("", text).strip()
        return (rest or None) if calls else text, calls
    call = _call(text.strip())
    return (None, [call]) if call is not None else (text, [])


def _call(text: str) -> ToolCall | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = _arguments(arguments)
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}",
                    function=FunctionCall(name=data["name"], arguments=json.dumps(arguments)))
