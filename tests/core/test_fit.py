"""The fit estimate: the KV cache formula and the fits / tight / won't-fit verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.fit import (
    FitLabel,
    MemoryBudget,
    ModelShape,
    estimate_fit,
    kv_cache_bytes,
    overhead_bytes,
)
from llamadesk.core.gguf_validate import read_metadata
from llamadesk.core.hardware import Hardware

GB = 1_000_000_000
LLAMA2_7B = ModelShape(block_count=32, head_count_kv=32, head_dim=128)


def test_kv_cache_formula() -> None:
    # layers × context × KV heads × head size × 2 (K and V) × 2 bytes (f16)
    assert kv_cache_bytes(LLAMA2_7B, 4096) == 32 * 4096 * 32 * 128 * 2 * 2 == 2 * 1024**3
    mistral = ModelShape.from_hint(ModelCatalog.load().get(
        "mistral-7b-instruct-v0.2").architecture)  # type: ignore[union-attr]
    # Grouped-query attention: 8 KV heads instead of 32, a quarter of the cache.
    assert kv_cache_bytes(mistral, 4096) == kv_cache_bytes(LLAMA2_7B, 4096) // 4
    assert kv_cache_bytes(LLAMA2_7B, 4096, bytes_per_element=1) == 1024**3


def test_shape_from_the_real_gguf(bundled_model_path: Path) -> None:
    shape = ModelShape.from_metadata(read_metadata(bundled_model_path))
    assert shape == ModelShape(block_count=30, head_count_kv=3, head_dim=64)


def test_fits_with_room() -> None:
    fit = estimate_fit(4 * GB, LLAMA2_7B, 2048, MemoryBudget(32 * GB, 20 * GB))
    assert fit.label == FitLabel.FITS
    assert fit.kv_cache_bytes == 1024**3
    assert fit.needed_bytes == 4 * GB + 1024**3 + overhead_bytes(4 * GB)
    assert fit.explanation.startswith("Fits: needs about 5.6 GB (4.0 GB weights")
    assert "2,048-token context" in fit.explanation
    assert "20.0 GB of 32.0 GB RAM is free" in fit.explanation


@pytest.mark.parametrize(("total", "available", "label", "phrase"), [
    (16, 6.2, FitLabel.TIGHT, "leaves little for other apps"),
    (16, 3, FitLabel.TIGHT, "close other apps"),
    (6, 3, FitLabel.WONT_FIT, "6.0 GB RAM in all"),
])
def test_tight_and_wont_fit(total: float, available: float, label: FitLabel,
                            phrase: str) -> None:
    # 4 GB weights + 1 GiB context + 0.5 GB working memory: about 5.6 GB.
    fit = estimate_fit(4 * GB, LLAMA2_7B, 2048, MemoryBudget(int(total * GB),
                                                             int(available * GB)))
    assert fit.label == label
    assert phrase in fit.explanation


def test_gpu_memory_counts_when_offloading() -> None:
    budget = MemoryBudget(6 * GB, 2 * GB, vram_total=24 * GB, vram_free=20 * GB)
    assert estimate_fit(4 * GB, LLAMA2_7B, 2048, budget).label == FitLabel.WONT_FIT
    on_gpu = estimate_fit(4 * GB, LLAMA2_7B, 2048, budget, gpu_offload=True)
    assert on_gpu.label == FitLabel.FITS and on_gpu.on_gpu
    assert "of GPU memory is free" in on_gpu.explanation


def test_longer_context_can_tip_the_verdict() -> None:
    budget = MemoryBudget(16 * GB, 9 * GB)
    assert estimate_fit(4 * GB, LLAMA2_7B, 2048, budget).label == FitLabel.FITS
    assert estimate_fit(4 * GB, LLAMA2_7B, 16384, budget).label != FitLabel.FITS


def test_unknown_shape_is_guessed_and_said() -> None:
    fit = estimate_fit(4 * GB, None, 4096, MemoryBudget(32 * GB, 20 * GB))
    assert fit.kv_cache_bytes == int(4 * GB * 0.125)
    assert "(guessed)" in fit.explanation


def test_budget_from_hardware_probe() -> None:
    hw = Hardware("cpu", 4, 8, 16 * GB, 10 * GB)
    assert MemoryBudget.from_hardware(hw) == MemoryBudget(16 * GB, 10 * GB, None, None)
