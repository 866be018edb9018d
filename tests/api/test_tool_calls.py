"""Reading a reply's tool calls, in the two styles models write them (no model)."""

from __future__ import annotations

import json

from llamadesk.api.tools import read_calls


def test_hermes_blocks_are_calls_and_the_rest_is_the_words() -> None:
    content, calls = read_calls(
        'Let me look.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>'
        '<tool_call>{"name": "b", "arguments": "{\\"y\\": 2}"}</tool_call>')
    assert content == "Let me look."
    assert [c.function.name for c in calls] == ["a", "b"]
    assert [json.loads(c.function.arguments) for c in calls] == [{"x": 1}, {"y": 2}]
    assert len({c.id for c in calls}) == 2


def test_a_bare_json_call_with_parameters() -> None:
    content, calls = read_calls('{"name": "get_time", "parameters": {"city": "Porto"}}')
    assert content is None and calls[0].function.name == "get_time"
    assert json.loads(calls[0].function.arguments) == {"city": "Porto"}


def test_words_and_broken_calls_stay_words() -> None:
    assert read_calls("It is sunny.") == ("It is sunny.", [])
    assert read_calls('{"temperature": 21}') == ('{"temperature": 21}', [])
    text = "<tool_call>not json</tool_call>"
    assert read_calls(text) == (text, [])
