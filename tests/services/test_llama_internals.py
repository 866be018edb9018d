"""One module owns llama-cpp-python's internals: nothing else in app/ touches a private
attribute or a raw-context C call, and every patch it makes fails loudly when upstream
changed what it patches."""

from __future__ import annotations

import ast
import inspect
import json
import types
from pathlib import Path

import llama_cpp
import llama_cpp.llama_chat_format as llama_chat_format
import pytest
from llama_cpp.llama_grammar import json_schema_to_gbnf

from llamadesk.services import llama_internals as internals
from llamadesk.services.constraints import json_schema_grammar

APP = Path(__file__).resolve().parents[2] / "app" / "llamadesk"
OWNER = APP / "services" / "llama_internals.py"

#: Private attributes of llama-cpp-python's objects the app relies on.
PRIVATE_ATTRIBUTES = {"_ctx", "_model", "_input_ids", "input_ids", "n_tokens",
                      "_requires_eval", "_batch", "_sampler", "_chat_handlers",
                      "Jinja2ChatFormatter"}
#: C calls that need the raw context or patch around the high-level API.
RAW_CALL_PREFIXES = ("llama_state_", "llama_memory_", "llama_get_logits", "llama_get_memory",
                     "llama_set_abort_callback", "llama_perf_context", "llama_vocab_is_eog",
                     "load_shared_library")


def violations(source: str) -> list[str]:
    """Where ``source`` reaches into llama-cpp-python past its public API."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            owner_is_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if node.attr in PRIVATE_ATTRIBUTES and not owner_is_self:
                found.append(f"line {node.lineno}: .{node.attr}")
            if node.attr.startswith(RAW_CALL_PREFIXES):
                found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id.startswith(RAW_CALL_PREFIXES):
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llama_cpp"):
            module = node.module or ""
            if any(part.startswith("_") for part in module.split(".")) \
                    or module == "llama_cpp.llama_chat_format":
                found.append(f"line {node.lineno}: from {module}")
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith(RAW_CALL_PREFIXES) or a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith("llama_cpp.")
                      and a.name not in ("llama_cpp.llama_grammar",)]
    return found


def test_the_check_finds_each_kind_of_reach_into_llama_cpp_python() -> None:
    source = """
import llama_cpp
import llama_cpp.llama_chat_format as f
from llama_cpp._ctypes_extensions import load_shared_library
from llama_cpp import llama_state_seq_get_data

def f(llm, memory):
    llm._ctx.kv_cache_clear()
    llm.n_tokens = 0
    llm._requires_eval = True
    llama_cpp.llama_memory_seq_rm(memory, 0, 0, -1)
    return llama_cpp.llama_get_logits_ith(None, -1)

class Mine:
    def __init__(self, ctx):
        self._ctx = ctx  # an attribute of its own: fine
"""
    found = violations(source)
    for needle in ("llama_chat_format", "_ctypes_extensions", "llama_state_seq_get_data",
                   "._ctx", ".n_tokens", "._requires_eval", ".llama_memory_seq_rm",
                   ".llama_get_logits_ith"):
        assert any(needle in v for v in found), (needle, found)
    assert not any("line 16" in v for v in found), found


def test_only_the_owner_module_reaches_into_llama_cpp_python() -> None:
    offenders = {}
    for path in sorted(APP.rglob("*.py")):
        if path == OWNER:
            continue
        found = violations(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(APP))] = found
    assert offenders == {}, f"only services/llama_internals.py may do this: {offenders}"
    assert violations(OWNER.read_text(encoding="utf-8")), "the owner does what it owns"


def test_the_json_string_patch_applies_to_this_converter() -> None:
    upstream = str(json_schema_to_gbnf(json.dumps({"type": "string"})))
    patched = json_schema_grammar({"type": "string"})
    assert internals._LOOSE_CHAR in upstream
    assert internals._LOOSE_CHAR not in patched and internals._STRICT_CHAR in patched


def test_the_json_string_patch_refuses_a_string_rule_it_does_not_know() -> None:
    changed = 'root ::= string\nchar ::= [^"] | "\\\\" ["\\\\/bfnrt]\n'
    with pytest.raises(internals.PatchNotAppliedError):
        internals.strict_json_strings(changed)
    without_strings = 'root ::= "true" | "false"\n'
    assert internals.strict_json_strings(without_strings) == without_strings


def test_loading_skips_llama_cpp_pythons_templates(bundled_model_path: Path) -> None:
    llm = internals.new_llama(model_path=str(bundled_model_path), vocab_only=True,
                              verbose=False)
    try:
        assert "tokenizer.chat_template" in llm.metadata
        assert all(h is None for h in llm._chat_handlers.values())
        assert llm._chat_handlers, "the stand-in was asked to compile the template"
    finally:
        llm.close()
    assert llama_chat_format.Jinja2ChatFormatter.__name__ == "Jinja2ChatFormatter"


def test_loading_refuses_when_upstream_no_longer_builds_templates_that_way(
        bundled_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if llama.py took its formatter from elsewhere: the swap would do nothing.
    elsewhere = types.SimpleNamespace(**vars(llama_chat_format))
    monkeypatch.setattr(llama_cpp.llama, "llama_chat_format", elsewhere)

    class Compiles:
        def __init__(self, **_kwargs: object) -> None:
            pass

        def to_chat_handler(self) -> None:
            return None

    elsewhere.Jinja2ChatFormatter = Compiles
    with pytest.raises(internals.PatchNotAppliedError):
        internals.new_llama(model_path=str(bundled_model_path), vocab_only=True,
                            verbose=False)


def test_the_swap_refuses_when_the_formatter_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(llama_chat_format, "Jinja2ChatFormatter")
    with pytest.raises(internals.PatchNotAppliedError), \
            internals.without_llama_cpp_templates():
        pass


def test_generate_still_decides_on_the_flag_that_marks_logits_stale() -> None:
    """The fix for exact prompt hits sets ``_requires_eval``: upstream must read it
    where it decides to sample without a decode."""
    source = inspect.getsource(llama_cpp.Llama.generate)
    assert "exact_prompt_cached and not self._requires_eval" in source
    assert "self._requires_eval = True" in inspect.getsource(llama_cpp.Llama.reset)
