"""Grammars for JSON replies (the local API's ``response_format`` and tool calls), from
llama-cpp-python's JSON-schema converter.

The converter lives inside the ``llama_cpp`` package, whose import loads llama.cpp
itself; it is imported on the first conversion, so naming these functions (the API's
request conversion does) loads nothing. This module is the one door from the local API
to ``llama_cpp`` that the import contracts allow (pyproject.toml).
"""

from __future__ import annotations

import json
from typing import Any


def json_object_grammar() -> str:
    """GBNF for a JSON object. Built by the schema converter rather than llama.cpp's
    json.gbnf, whose unbounded whitespace lets a small model pad until its token limit."""
    return json_schema_grammar({"type": "object"})


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """GBNF for the JSON a schema allows (llama.cpp's own converter). Raises ValueError
    with a readable reason for a schema it cannot convert."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from llamadesk.services.llama_internals import strict_json_strings

    try:
        gbnf = str(json_schema_to_gbnf(json.dumps(schema)))
    except (ValueError, KeyError, TypeError, RecursionError, NotImplementedError) as exc:
        raise ValueError(f"the JSON schema cannot be turned into a grammar: {exc}") from exc
    return strict_json_strings(gbnf)


def tool_call_grammar(schema: dict[str, Any], hermes: bool) -> str:
    """GBNF for one call matching ``schema``: bare JSON, or (``hermes``) inside the
    ``<tool_call>`` markers that Hermes-style templates teach their models."""
    call = json_schema_grammar(schema)
    if not hermes:
        return call
    return call.replace("root ::=", "call ::=", 1) + \
        '\nroot ::= "<tool_call>\\n" call "\\n</tool_call>"\n'
