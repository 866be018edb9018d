"""The fit check the app uses: memory measured now, the hardware settings in force, and
the one estimate in ``core/fit.py``."""

from __future__ import annotations

from llamadesk.core import hardware as host
from llamadesk.core.fit import FitEstimate, MemoryBudget, estimate_fit
from llamadesk.core.registry import ModelEntry
from llamadesk.core.settings import AppSettings


def memory_budget() -> MemoryBudget:
    """Free RAM now."""
    return MemoryBudget.from_hardware(host.probe())


def fit_check(entry: ModelEntry, settings: AppSettings, n_ctx: int,
              budget: MemoryBudget | None = None) -> FitEstimate:
    """Will an installed model fit now at ``n_ctx`` (capped at its trained context)
    under ``settings``' GPU offload and context cache types? The chat header's model
    picker asks this before it loads a model."""
    return estimate_fit(entry.size, entry.shape, n_ctx, budget or memory_budget(),
                        context_length=entry.context_length, hardware=settings.hardware)
