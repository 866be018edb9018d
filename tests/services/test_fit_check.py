"""The fit check the chat header's model picker calls: an installed model, the settings
in force and a context size in; the one estimate of core/fit.py out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from llamadesk.core.fit import CacheTypes, MemoryBudget, estimate_fit, kv_cache_bytes
from llamadesk.core.gguf_validate import read_metadata
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelEntry, ModelRegistry
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.services.fit_check import fit_check, memory_budget

GB = 1_000_000_000


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
    assert fit.label.value in fit.explanation.lower()
