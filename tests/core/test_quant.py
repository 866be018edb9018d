"""Quantisation and split parts read from GGUF file names, and how a repo's files group."""

from __future__ import annotations

import pytest

from llamadesk.core.hub import HubFile, group_gguf_files
from llamadesk.core.quant import is_gguf_name, parse_quantisation, split_part


@pytest.mark.parametrize(("name", "quant"), [
    ("llama-2-7b-chat.Q4_K_M.gguf", "Q4_K_M"),
    ("mistral-7b-instruct-v0.2.Q8_0.gguf", "Q8_0"),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
    ("Meta-Llama-3-8B-Instruct-IQ4_XS.gguf", "IQ4_XS"),
    ("qwen2-0_5b-instruct-q5_k_s.gguf", "Q5_K_S"),
    ("phi-2.Q3_K_L.gguf", "Q3_K_L"),
    ("model-f16.gguf", "F16"),
    ("model.fp16.gguf", "F16"),
    ("gemma-2b-it-BF16.gguf", "BF16"),
    ("some-IQ2_XXS.gguf", "IQ2_XXS"),
    ("Q4_K_M/model-00001-of-00002.gguf", "Q4_K_M"),
    ("plain-model.gguf", None),
])
def test_parse_quantisation(name: str, quant: str | None) -> None:
    assert parse_quantisation(name) == quant


def test_split_parts() -> None:
    part = split_part("Llama-70B.Q4_K_M-00002-of-00003.gguf")
    assert part is not None and (part.index, part.count, part.raw) == (2, 3, False)
    assert part.stem == "Llama-70B.Q4_K_M"
    raw = split_part("llama-2-70b-chat.Q8_0.gguf-split-b")
    assert raw is not None and raw.raw and raw.index == 2
    assert split_part("llama-2-7b.Q4_K_M.gguf") is None
    assert is_gguf_name("x.gguf") and is_gguf_name("x.gguf-split-a")
    assert not is_gguf_name("README.md")


def test_grouping_and_refusing_split_models() -> None:
    files = [
        HubFile("README.md", 10, None),
        HubFile("m.Q8_0.gguf", 8_000, "a" * 64),
        HubFile("m.Q4_K_M.gguf", 4_000, "b" * 64),
        HubFile("big.Q8_0-00002-of-00002.gguf", 3_000, "c" * 64),
        HubFile("big.Q8_0-00001-of-00002.gguf", 5_000, "d" * 64),
        HubFile("huge.Q6_K.gguf-split-a", 7_000, "e" * 64),
        HubFile("huge.Q6_K.gguf-split-b", 7_000, "f" * 64),
    ]
    choices = group_gguf_files("o/r", files)
    by_name = {c.name: c for c in choices}
    assert set(by_name) == {"m.Q4_K_M.gguf", "m.Q8_0.gguf", "big.Q8_0.gguf", "huge.Q6_K"}
    assert next(c.name for c in choices) == "m.Q4_K_M.gguf"  # smallest first
    single = by_name["m.Q4_K_M.gguf"]
    assert single.refusal is None and single.quant == "Q4_K_M" and single.size == 4_000
    split = by_name["big.Q8_0.gguf"]
    assert split.size == 8_000 and split.quant == "Q8_0"
    assert split.filename == "big.Q8_0-00001-of-00002.gguf"
    assert split.refusal and "split across 2 files" in split.refusal
    raw = by_name["huge.Q6_K"]
    assert raw.refusal and "joined by hand" in raw.refusal
