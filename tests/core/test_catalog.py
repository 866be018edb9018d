"""The curated catalog: the shipped file passes its schema and rules; broken ones do not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from llamadesk.core import bundled
from llamadesk.core.catalog import CatalogError, ModelCatalog, validate_catalog
from llamadesk.core.chat_format import FALLBACK_FORMATS
from llamadesk.core.paths import resources_dir
from llamadesk.core.quant import parse_quantisation
from llamadesk.core.schema import SchemaError, check

REQUIRED = {
    "llama-2-7b-chat", "llama-2-13b-chat", "codellama-7b-instruct", "vicuna-7b-v1.5",
    "vicuna-13b-v1.5", "wizardlm-13b-v1.2", "nous-hermes-llama2-13b",
    "mistral-7b-instruct-v0.2", "zephyr-7b-beta", "openhermes-2.5-mistral-7b",
    "tinyllama-1.1b-chat-v1.0", "orca-2-7b", "smollm2-135m-instruct-q4_1",
}


def _raw() -> tuple[dict[str, Any], dict[str, Any]]:
    data = json.loads((resources_dir() / "catalog.json").read_text(encoding="utf-8"))
    schema = json.loads((resources_dir() / "catalog.schema.json").read_text(encoding="utf-8"))
    return data, schema


def test_shipped_catalog_is_valid_and_complete() -> None:
    catalog = ModelCatalog.load()
    assert {e.id for e in catalog.entries} >= REQUIRED
    for entry in catalog.entries:
        assert entry.chat_format in FALLBACK_FORMATS
        assert entry.default_quant in entry.quants
        assert all(parse_quantisation(f.file) == f.quant for f in entry.files)
        assert entry.licence.url.startswith("https://")
        assert len(entry.description) > 40


def test_llama2_licensed_models_require_acceptance() -> None:
    catalog = ModelCatalog.load()
    for entry_id in ("llama-2-7b-chat", "llama-2-13b-chat", "codellama-7b-instruct",
                     "vicuna-7b-v1.5", "wizardlm-13b-v1.2", "nous-hermes-llama2-13b"):
        entry = catalog.get(entry_id)
        assert entry is not None
        assert entry.licence.id == "llama2"
        assert entry.licence.requires_acceptance
        assert entry.licence.acceptable_use_url
    for entry_id in ("mistral-7b-instruct-v0.2", "tinyllama-1.1b-chat-v1.0",
                     "smollm2-135m-instruct-q4_1"):
        entry = catalog.get(entry_id)
        assert entry is not None and not entry.licence.requires_acceptance


def test_bundled_entry_matches_manifest() -> None:
    entry = ModelCatalog.load().get(bundled.manifest().id)
    assert entry is not None and entry.bundled
    item = entry.file("Q4_1")
    assert item.file == bundled.manifest().file
    assert item.size == bundled.manifest().size


def test_resolve_specs() -> None:
    catalog = ModelCatalog.load()
    entry, item = catalog.resolve("mistral-7b-instruct-v0.2")
    assert item.quant == entry.default_quant == "Q4_K_M"
    _, item = catalog.resolve("mistral-7b-instruct-v0.2:q8_0")
    assert item.file == "mistral-7b-instruct-v0.2.Q8_0.gguf"
    with pytest.raises(CatalogError, match="no IQ1_S file"):
        catalog.resolve("mistral-7b-instruct-v0.2:IQ1_S")
    with pytest.raises(CatalogError, match="no catalog model 'nope'"):
        catalog.resolve("nope")
    found = catalog.for_repo("thebloke/llama-2-7b-chat-gguf")
    assert found is not None and found.id == "llama-2-7b-chat"


@pytest.mark.parametrize(("breakage", "expected"), [
    (lambda m: m.pop("licence"), "missing required 'licence'"),
    (lambda m: m.update(chat_format="klingon"), "is not one of"),
    (lambda m: m.update(default_quant="Q2_K"), "default_quant Q2_K has no file"),
    (lambda m: m["files"][0].update(quant="Q5_K_M"), "looks like Q3_K_M"),
    (lambda m: m["files"][0].update(file="../evil.Q3_K_M.gguf"), "does not match"),
    (lambda m: m.update(parameters="7B"), "expected integer"),
    (lambda m: m.update(surprise=1), "unexpected property 'surprise'"),
    (lambda m: m["licence"].update(requires_acceptance="yes"), "expected boolean"),
])
def test_broken_entries_are_refused(breakage: Any, expected: str) -> None:
    data, schema = _raw()
    breakage(data["models"][0])
    problems = validate_catalog(data, schema)
    assert any(expected in p for p in problems), problems


def test_duplicate_ids_and_bundled_count() -> None:
    data, schema = _raw()
    data["models"].append(copy.deepcopy(data["models"][0]))
    data["models"][-1]["bundled"] = True
    problems = validate_catalog(data, schema)
    assert any("duplicate id" in p for p in problems)
    assert any("exactly one entry must be marked bundled" in p for p in problems)


def test_load_reports_problems_readably(tmp_path: Path) -> None:
    data, _ = _raw()
    data["models"][0]["chat_format"] = "klingon"
    broken = tmp_path / "catalog.json"
    broken.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"catalog.json is invalid:\n.*klingon"):
        ModelCatalog.load(broken)


def test_schema_checker_refuses_unknown_keywords() -> None:
    with pytest.raises(SchemaError, match="unsupported schema keywords"):
        check({}, {"type": "object", "oneOf": []})
    assert check(True, {"type": "integer"}) == ["$: expected integer, got bool True"]


def test_embedding_models_mark_their_prefixes_dimension_and_source() -> None:
    catalog = ModelCatalog.load()
    by_id = {e.id: e for e in catalog.embedding_models}
    assert set(by_id) == {"nomic-embed-text-v1.5", "bge-small-en-v1.5"}
    nomic = by_id["nomic-embed-text-v1.5"]
    assert (nomic.repo, nomic.licence.id, nomic.dimension) == (
        "nomic-ai/nomic-embed-text-v1.5-GGUF", "Apache-2.0", 768)
    assert (nomic.document_prefix, nomic.query_prefix) == ("search_document: ",
                                                           "search_query: ")
    bge = by_id["bge-small-en-v1.5"]
    assert (bge.licence.id, bge.dimension, bge.document_prefix) == ("MIT", 384, "")
    for entry in by_id.values():
        assert entry.source.startswith(f"https://huggingface.co/{entry.repo}/")
        assert all(parse_quantisation(f.file) == f.quant for f in entry.files)
    assert not {e.id for e in catalog.entries} & set(by_id), "not offered as chat models"
    assert catalog.embedding_for("nomic-embed-text-v1.5.Q4_K_M") is nomic
    assert catalog.embedding_for("bge-small-en-v1.5-gguf:Q8_0") is bge
    assert catalog.embedding_for("smollm2-135m-instruct-q4_1") is None


def test_broken_embedding_entries_are_refused() -> None:
    data, schema = _raw()
    data["embedding_models"][0]["default_quant"] = "Q8_0"
    data["embedding_models"][1]["dimension"] = "384"
    data["embedding_models"][1]["files"][0]["quant"] = "Q5_K_M"
    problems = validate_catalog(data, schema)
    assert any("expected integer" in p for p in problems), problems
    data["embedding_models"][1]["dimension"] = 384
    problems = validate_catalog(data, schema)
    assert any("default_quant Q8_0 has no file" in p for p in problems), problems
    assert any("looks like Q4_K_M, not Q5_K_M" in p for p in problems), problems
