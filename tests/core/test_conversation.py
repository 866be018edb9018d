"""Sampling parameters: validation, clamping, round trips."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from llamadesk.core.conversation import SamplingParams

ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"

# -- sampling parameters -----------------------------------------------------------------------


def test_sampling_validated_keeps_sane_values() -> None:
    params = SamplingParams(temperature=0.3, top_p=0.9, top_k=10, min_p=0.1,
                            repeat_penalty=1.2, max_tokens=100, n_ctx=2048, seed=5)
    assert params.validated() == params


@pytest.mark.parametrize(("field_name", "value", "expected"), [
    ("temperature", -1.0, 0.0),
    ("temperature", 9.0, 5.0),
    ("top_p", -0.5, 0.0),
    ("top_p", 1.5, 1.0),
    ("top_k", -3, 0),
    ("min_p", -0.1, 0.0),
    ("min_p", 2.0, 1.0),
    ("repeat_penalty", -1.0, 0.0),
    ("repeat_penalty", 50.0, 5.0),
    ("max_tokens", 0, 1),
    ("max_tokens", -10, 1),
    ("n_ctx", 16, 256),
    ("n_ctx", 1 << 30, 1 << 20),
    ("seed", -1, -1),
])
def test_sampling_validated_clamps(field_name: str, value: float, expected: float) -> None:
    params = SamplingParams(**{field_name: value}).validated()  # type: ignore[arg-type]
    assert getattr(params, field_name) == expected
    # Every other field keeps its default.
    for f in fields(SamplingParams):
        if f.name != field_name:
            assert getattr(params, f.name) == getattr(SamplingParams(), f.name)


def test_sampling_validated_converts_types() -> None:
    params = SamplingParams(temperature="0.5", top_k="12", seed=3.0).validated()  # type: ignore[arg-type]
    assert (params.temperature, params.top_k, params.seed) == (0.5, 12, 3)
    assert isinstance(params.top_k, int)
    assert isinstance(params.temperature, float)


def test_sampling_from_dict() -> None:
    assert SamplingParams.from_dict(None) == SamplingParams()
    assert SamplingParams.from_dict({}) == SamplingParams()
    assert SamplingParams.from_dict({"top_k": 5, "unknown": 1, "mirostat_tau": 5.0}) == \
        SamplingParams(top_k=5)
    full = SamplingParams(temperature=1.1, top_p=0.7, top_k=3, min_p=0.2,
                          repeat_penalty=1.0, max_tokens=9, n_ctx=1024, seed=77)
    assert SamplingParams.from_dict(full.to_dict()) == full
    assert SamplingParams.from_dict(json.loads(json.dumps(full.to_dict()))) == full


