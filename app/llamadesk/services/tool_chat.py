"""Chats with tools (the local API's): rendered whole by the model's own template, with
a grammar when a call is required. No llama.cpp here; the engine calls these."""

from __future__ import annotations

import threading
from dataclasses import replace

from llamadesk.core.chat_format import ChatTemplate, ChatTemplateCancelled, ChatTemplateError
from llamadesk.services.engine_errors import EngineError, ToolsUnsupportedError
from llamadesk.services.engine_types import ReplyConstraints, ToolChat
from llamadesk.services.json_grammar import tool_call_grammar


def render_tool_chat(template: ChatTemplate, chat: ToolChat, model_name: str, bos: str,
                     eos: str, cancel: threading.Event) -> str:
    """The prompt for a chat with tools. Raises ToolsUnsupportedError for a template that
    does not take tools, ChatTemplateCancelled on Stop, EngineError on a failed render."""
    if not template.supports_tools:
        raise ToolsUnsupportedError(
            f"The chat template of {model_name or 'this model'} does not take tools, so "
            "this model cannot call them.")
    try:
        return template.render(
            chat.messages,  # type: ignore[arg-type]  # tool calls beside role and content
            bos_token=bos, eos_token=eos, cancel=cancel, tools=chat.tools)
    except ChatTemplateCancelled:
        raise
    except ChatTemplateError as exc:
        raise EngineError(str(exc)) from exc


def with_call_grammar(constraints: ReplyConstraints, template: ChatTemplate) -> ReplyConstraints:
    """A required tool call becomes a grammar in the template's own call style:
    ``<tool_call>`` markers when the template teaches them, bare JSON otherwise."""
    chat = constraints.tool_chat
    if chat is None or chat.required is None:
        return constraints
    try:
        grammar = tool_call_grammar(chat.required, "<tool_call>" in template.source)
    except ValueError as exc:
        raise EngineError(f"The tools cannot be turned into a grammar: {exc}") from exc
    return replace(constraints, grammar=grammar)
