"""The fit estimate: the KV cache formula with its cache types, the context cap, the
fits / tight / won't-fit verdicts, and how many layers Automatic puts on a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.fit import (
    GPU_COMFORT,
    CacheTypes,
    FitLabel,
    MemoryBudget,
    ModelShape,
    cache_bytes,
    choose_gpu_layers,
    context_size,
    estimate_fit,
    gpu_compute_bytes,
    gpu_layers_for,
    kv_cache_bytes,
    overhead_bytes,
)
from llamadesk.core.gguf_validate import read_metadata
from llamadesk.core.hardware import Hardware
from llamadesk.core.settings import HardwareSettings

GB = 1_000_000_000
GiB = 1024**3
LLAMA2_7B = ModelShape(block_count=32, head_count_kv=32, head_dim=128)
F16 = CacheTypes("f16", "f16")
#: The app's default cache: 8-bit keys, f16 values (flash attention is off).
DEFAULT = CacheTypes("q8_0", "f16")
CPU_F16 = HardwareSettings(gpu_layers="none", kv_cache_type="f16")


def test_kv_cache_formula() -> None:
    # layers × context × KV heads × head size × (2 bytes per key + 2 per value)
    assert kv_cache_bytes(LLAMA2_7B, 4096, F16) == 32 * 4096 * 32 * 128 * 2 * 2 == 2 * GiB
    mistral = ModelShape.from_hint(ModelCatalog.load().get(
        "mistral-7b-instruct-v0.2").architecture)  # type: ignore[union-attr]
    # Grouped-query attention: 8 KV heads instead of 32, a quarter of the cache.
    assert kv_cache_bytes(mistral, 4096, F16) == kv_cache_bytes(LLAMA2_7B, 4096, F16) // 4


def test_8_bit_entries_take_34_bytes_per_32_values() -> None:
    assert cache_bytes(4096, "q8_0") == 4096 // 32 * 34 == 4352
    assert cache_bytes(4096, "f16") == 8192
    assert cache_bytes(33, "q8_0") == 68  # whole blocks
    assert cache_bytes(32, "unknown") == 64  # an unknown type counts as f16
    row = 32 * 128
    assert kv_cache_bytes(LLAMA2_7B, 4096, DEFAULT) == 32 * 4096 * (row * 34 // 32 + row * 2)
    both = kv_cache_bytes(LLAMA2_7B, 4096, CacheTypes("q8_0", "q8_0"))
    assert both == 32 * 4096 * row * 34 // 32 * 2
    assert both < kv_cache_bytes(LLAMA2_7B, 4096, DEFAULT) < 2 * GiB


@pytest.mark.parametrize(("kv", "flash", "expected"), [
    ("q8_0", False, CacheTypes("q8_0", "f16")),  # values are 8-bit only with flash attention
    ("q8_0", True, CacheTypes("q8_0", "q8_0")),
    ("f16", True, CacheTypes("f16", "f16")),
    ("q4_0", True, CacheTypes("f16", "f16")),  # not offered: the engine falls back to f16
])
def test_cache_types_follow_the_hardware_settings(kv: str, flash: bool,
                                                  expected: CacheTypes) -> None:
    assert CacheTypes.for_settings(HardwareSettings(kv_cache_type=kv, flash_attn=flash)) \
        == expected


def test_the_default_settings_size_the_cache_with_8_bit_keys() -> None:
    fit = estimate_fit(4 * GB, LLAMA2_7B, 2048, MemoryBudget(32 * GB, 20 * GB))
    assert fit.kv_cache_bytes == kv_cache_bytes(LLAMA2_7B, 2048, DEFAULT)


def test_the_context_is_capped_at_the_models_trained_context() -> None:
    assert context_size(8192, 4096) == 4096
    assert context_size(2048, 4096) == 2048
    assert context_size(2048, None) == 2048
    fit = estimate_fit(4 * GB, LLAMA2_7B, 8192, MemoryBudget(32 * GB, 20 * GB),
                       context_length=4096, hardware=CPU_F16)
    assert fit.n_ctx == 4096 and fit.kv_cache_bytes == 2 * GiB
    assert "4,096-token context" in fit.explanation


def test_shape_from_the_real_gguf(bundled_model_path: Path) -> None:
    shape = ModelShape.from_metadata(read_metadata(bundled_model_path))
    assert shape == ModelShape(block_count=30, head_count_kv=3, head_dim=64)


def test_fits_with_room() -> None:
    fit = estimate_fit(4 * GB, LLAMA2_7B, 2048, MemoryBudget(32 * GB, 20 * GB),
                       hardware=CPU_F16)
    assert fit.label == FitLabel.FITS
    assert fit.kv_cache_bytes == GiB
    assert fit.needed_bytes == 4 * GB + GiB + overhead_bytes(4 * GB)
    assert fit.ram_bytes == fit.needed_bytes and fit.vram_bytes == 0 and fit.layers_on_gpu == 0
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
                                                             int(available * GB)),
                       hardware=CPU_F16)
    assert fit.label == label
    assert phrase in fit.explanation


def test_all_layers_on_a_gpu_with_room_fit_there() -> None:
    budget = MemoryBudget(6 * GB, 2 * GB, vram_total=24 * GB, vram_free=20 * GB)
    assert estimate_fit(4 * GB, LLAMA2_7B, 2048, budget,
                        hardware=HardwareSettings(gpu_layers="none")).label == FitLabel.WONT_FIT
    on_gpu = estimate_fit(4 * GB, LLAMA2_7B, 2048, budget,
                          hardware=HardwareSettings(gpu_layers="all"))
    assert on_gpu.label == FitLabel.FITS
    assert on_gpu.gpu_layers == -1 and on_gpu.layers_on_gpu == 33 == on_gpu.layer_count
    assert on_gpu.ram_bytes == overhead_bytes(4 * GB)  # only working memory stays
    assert "33 of 33 layers on the GPU" in on_gpu.explanation
    assert "of the 20.0 GB of GPU memory free" in on_gpu.explanation
    # The shorthand for "all layers" gives the same answer.
    assert estimate_fit(4 * GB, LLAMA2_7B, 2048, budget, gpu_offload=True) == on_gpu


def test_without_a_gpu_nothing_is_offloaded_whatever_the_setting() -> None:
    budget = MemoryBudget(32 * GB, 20 * GB)  # no GPU llama.cpp can use
    for setting in ("auto", "all", "20"):
        fit = estimate_fit(4 * GB, LLAMA2_7B, 2048, budget,
                           hardware=HardwareSettings(gpu_layers=setting))
        assert fit.gpu_layers == 0 and fit.vram_bytes == 0 and fit.layers_on_gpu == 0
    assert gpu_layers_for(HardwareSettings(), 4 * GB, LLAMA2_7B, 2048, None) == 0


def test_too_many_layers_for_the_gpu_will_not_fit() -> None:
    budget = MemoryBudget(64 * GB, 40 * GB, vram_total=4 * GB, vram_free=3 * GB)
    fit = estimate_fit(4 * GB, LLAMA2_7B, 4096, budget,
                       hardware=HardwareSettings(gpu_layers="all"))
    assert fit.label == FitLabel.WONT_FIT
    assert "set GPU offload to Automatic or fewer layers" in fit.explanation
    auto = estimate_fit(4 * GB, LLAMA2_7B, 4096, budget, hardware=HardwareSettings())
    assert auto.label == FitLabel.FITS and 0 < auto.layers_on_gpu < 33
    assert auto.vram_bytes <= 3 * GB * GPU_COMFORT
    assert "stays in RAM" in auto.explanation


def _gpu_need(layers: int, weights: int, shape: ModelShape, n_ctx: int,
              cache: CacheTypes) -> int:
    """The documented arithmetic: a share of the weights per layer (the output layer
    counts as one more), its part of the KV cache, and the compute buffers."""
    kv = kv_cache_bytes(shape, n_ctx, cache)
    return (weights * layers // (shape.block_count + 1)
            + kv * min(layers, shape.block_count) // shape.block_count
            + gpu_compute_bytes(weights, n_ctx))


@pytest.mark.parametrize("free_gb", [2, 3, 4.5, 6])
def test_automatic_takes_the_most_layers_that_fit_with_a_margin(free_gb: float) -> None:
    free = int(free_gb * GB)
    layers = choose_gpu_layers(4 * GB, LLAMA2_7B, 4096, DEFAULT, free)
    assert 0 < layers <= 33
    assert _gpu_need(layers, 4 * GB, LLAMA2_7B, 4096, DEFAULT) <= free * GPU_COMFORT
    if layers < 33:
        assert _gpu_need(layers + 1, 4 * GB, LLAMA2_7B, 4096, DEFAULT) > free * GPU_COMFORT


def test_automatic_puts_everything_or_nothing_on_the_gpu_at_the_extremes() -> None:
    assert choose_gpu_layers(4 * GB, LLAMA2_7B, 4096, DEFAULT, 80 * GB) == 33
    assert choose_gpu_layers(4 * GB, LLAMA2_7B, 4096, DEFAULT, 200_000_000) == 0
    assert choose_gpu_layers(4 * GB, LLAMA2_7B, 4096, DEFAULT, 0) == 0


def test_automatic_leaves_room_for_a_longer_context_and_a_larger_cache() -> None:
    free = 6 * GB
    short = choose_gpu_layers(4 * GB, LLAMA2_7B, 2048, DEFAULT, free)
    long = choose_gpu_layers(4 * GB, LLAMA2_7B, 16384, DEFAULT, free)
    assert long < short
    f16 = choose_gpu_layers(4 * GB, LLAMA2_7B, 8192, F16, free)
    q8 = choose_gpu_layers(4 * GB, LLAMA2_7B, 8192, CacheTypes("q8_0", "q8_0"), free)
    assert q8 > f16


def test_automatic_with_an_unknown_shape_is_all_or_nothing() -> None:
    assert choose_gpu_layers(4 * GB, None, 4096, DEFAULT, 40 * GB) == -1
    assert choose_gpu_layers(4 * GB, None, 4096, DEFAULT, 3 * GB) == 0


def test_the_gpu_setting_decides_the_layer_count() -> None:
    def layers(setting: str) -> int:
        return gpu_layers_for(HardwareSettings(gpu_layers=setting), 4 * GB, LLAMA2_7B, 4096,
                              3 * GB)

    assert layers("none") == 0
    assert layers("all") == -1
    assert layers("12") == 12
    assert layers("auto") == choose_gpu_layers(4 * GB, LLAMA2_7B, 4096, DEFAULT, 3 * GB)


def test_longer_context_can_tip_the_verdict() -> None:
    budget = MemoryBudget(16 * GB, 9 * GB)
    assert estimate_fit(4 * GB, LLAMA2_7B, 2048, budget,
                        hardware=CPU_F16).label == FitLabel.FITS
    assert estimate_fit(4 * GB, LLAMA2_7B, 16384, budget,
                        hardware=CPU_F16).label != FitLabel.FITS


def test_unknown_shape_is_guessed_and_said() -> None:
    fit = estimate_fit(4 * GB, None, 4096, MemoryBudget(32 * GB, 20 * GB))
    assert fit.kv_cache_bytes == int(4 * GB * 0.125)
    assert fit.layer_count is None
    assert "(guessed)" in fit.explanation


def test_budget_from_hardware_probe() -> None:
    hw = Hardware("cpu", 4, 8, 16 * GB, 10 * GB)
    assert MemoryBudget.from_hardware(hw) == MemoryBudget(16 * GB, 10 * GB, None, None)
    assert not MemoryBudget.from_hardware(hw).has_gpu
    assert MemoryBudget.from_hardware(hw, 24 * GB, 20 * GB).has_gpu
