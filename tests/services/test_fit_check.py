"""The fit check the chat header's model picker calls (``resolver.fit_estimate``: an
installed model, the settings in force and a context size in; the one estimate of
core/fit.py out), and GPU offload
Automatic: a marker in the load options until the model is loaded, then the layers that
fit the GPU's free memory (from a fake GPU here, since this machine has none)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from llamadesk.core.fit import (
    CacheTypes,
    FitEstimate,
    MemoryBudget,
    ModelShape,
    choose_gpu_layers,
    estimate_fit,
    kv_cache_bytes,
)
from llamadesk.core.gguf_validate import read_metadata
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelEntry, ModelRegistry
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.core.units import format_bytes
from llamadesk.services import fit_check as fit_check_module
from llamadesk.services.engine import LoadOptions, supports_gpu_offload
from llamadesk.services.fit_check import (
    GPU_LAYERS_AUTOMATIC,
    automatic_gpu_layers,
    memory_budget,
    offload_setting,
    resolve_gpu_layers,
)
from llamadesk.services.gpu_probe import GpuDevice, GpuMemory, probe_gpus
from llamadesk.services.resolver import fit_estimate

GB = 1_000_000_000


def fit_check(entry: ModelEntry, settings: AppSettings, n_ctx: int,
              budget: MemoryBudget | None = None) -> FitEstimate:
    """The picker's question about an installed model, as it asks it."""
    return fit_estimate(settings, entry.size, entry.shape, entry.context_length, n_ctx, budget)


def _installed(paths: AppPaths, model: Path) -> ModelEntry:
    """The bundled model's registry entry with the shape its GGUF header gives (what
    the registry records for a downloaded or imported file)."""
    entry = ModelRegistry(paths).bundled_entry()
    meta = read_metadata(model)
    assert entry is not None and entry.context_length
    return replace(entry, block_count=meta.block_count, head_count_kv=meta.head_count_kv,
                   head_dim=meta.head_dim)


def test_the_context_is_capped_and_the_cache_types_are_the_settings(
        paths: AppPaths, bundled_model_path: Path) -> None:
    entry = _installed(paths, bundled_model_path)
    budget = MemoryBudget(16 * GB, 8 * GB)
    settings = AppSettings(hardware=HardwareSettings(kv_cache_type="q8_0", flash_attn=True))
    fit = fit_check(entry, settings, 10 * entry.context_length, budget)
    assert fit.n_ctx == entry.context_length
    assert entry.shape is not None
    assert fit.kv_cache_bytes == kv_cache_bytes(entry.shape, entry.context_length,
                                                CacheTypes("q8_0", "q8_0"))
    assert fit == estimate_fit(entry.size, entry.shape, 10 * entry.context_length, budget,
                               context_length=entry.context_length,
                               hardware=settings.hardware)
    f16 = fit_check(entry, replace(settings, hardware=HardwareSettings(kv_cache_type="f16")),
                    2048, budget)
    assert f16.kv_cache_bytes > fit_check(entry, AppSettings(), 2048, budget).kv_cache_bytes


def test_memory_is_measured_when_no_budget_is_given(paths: AppPaths,
                                                   bundled_model_path: Path) -> None:
    budget = memory_budget()
    assert 0 < budget.available_ram <= budget.total_ram
    fit = fit_check(_installed(paths, bundled_model_path), AppSettings(), 2048)
    # Free RAM moves between two measurements; this machine's total does not.
    assert f"{format_bytes(budget.total_ram)} RAM" in fit.explanation


def fake_gpu(free: int, total: int = 24 * GB) -> GpuMemory:
    """A GPU measurement as a machine with one card would report it."""
    return GpuMemory((GpuDevice("CUDA0", "Fake card", free, total),))


DEFAULT_CACHE = CacheTypes("q8_0", "f16")


def test_the_budget_carries_the_measured_gpu_memory() -> None:
    budget = memory_budget(fake_gpu(20 * GB))
    assert budget.has_gpu and budget.vram_free == 20 * GB and budget.vram_total == 24 * GB
    assert not memory_budget(GpuMemory()).has_gpu


def test_the_settings_become_load_options_for_this_build() -> None:
    auto = offload_setting(HardwareSettings(gpu_layers="auto"))
    if supports_gpu_offload():
        assert auto == GPU_LAYERS_AUTOMATIC
    else:  # a CPU build, as on the machines the test suite usually runs on
        assert not memory_budget().has_gpu
        for setting in ("auto", "all", "none", "12"):
            assert offload_setting(HardwareSettings(gpu_layers=setting)) == 0


def test_with_gpu_offload_automatic_stays_a_marker_until_the_load(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fit_check_module, "supports_gpu_offload", lambda: True)  # a GPU build
    assert offload_setting(HardwareSettings(gpu_layers="auto")) == GPU_LAYERS_AUTOMATIC
    assert offload_setting(HardwareSettings(gpu_layers="all")) == -1
    assert offload_setting(HardwareSettings(gpu_layers="none")) == 0
    assert offload_setting(HardwareSettings(gpu_layers="7")) == 7


def test_automatic_sizes_the_real_file_against_the_free_gpu_memory(
        bundled_model_path: Path) -> None:
    meta = read_metadata(bundled_model_path)
    shape = ModelShape.from_metadata(meta)
    size = bundled_model_path.stat().st_size
    path = str(bundled_model_path)
    assert automatic_gpu_layers(path, 4096, DEFAULT_CACHE, fake_gpu(20 * GB)) == 31  # all
    assert automatic_gpu_layers(path, 4096, DEFAULT_CACHE, fake_gpu(100_000_000)) == 0
    assert automatic_gpu_layers(path, 4096, DEFAULT_CACHE, GpuMemory()) == 0
    some = automatic_gpu_layers(path, 4096, DEFAULT_CACHE, fake_gpu(700_000_000))
    assert some == choose_gpu_layers(size, shape, 4096, DEFAULT_CACHE, 700_000_000)
    assert 0 < some < 31
    # The context is capped at the model's trained one, as the loader caps it.
    assert meta.context_length is not None
    assert automatic_gpu_layers(path, 10 * meta.context_length, DEFAULT_CACHE,
                                fake_gpu(700_000_000)) == \
        automatic_gpu_layers(path, meta.context_length, DEFAULT_CACHE, fake_gpu(700_000_000))


def test_automatic_on_a_file_it_cannot_read_loads_on_the_cpu(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 16)
    assert automatic_gpu_layers(str(broken), 4096, DEFAULT_CACHE, fake_gpu(20 * GB)) == 0
    assert automatic_gpu_layers(str(tmp_path / "gone.gguf"), 4096, DEFAULT_CACHE,
                                fake_gpu(20 * GB)) == 0


def test_resolving_replaces_only_the_marker(bundled_model_path: Path) -> None:
    path = str(bundled_model_path)
    auto = LoadOptions(n_ctx=2048, n_gpu_layers=GPU_LAYERS_AUTOMATIC, flash_attn=True)
    resolved = resolve_gpu_layers(auto, path, fake_gpu(20 * GB))
    assert resolved == replace(auto, n_gpu_layers=31)
    # Measured here: a machine without a GPU loads on the CPU; with one, the small
    # model goes there whole.
    assert resolve_gpu_layers(auto, path).n_gpu_layers == (31 if probe_gpus().devices else 0)
    fixed = LoadOptions(n_gpu_layers=5)
    assert resolve_gpu_layers(fixed, path, fake_gpu(20 * GB)) is fixed
