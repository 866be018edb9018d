"""The fit check and GPU offload the app uses: memory measured now (RAM with psutil,
GPU memory through llama.cpp's devices), the hardware settings in force, and the one
estimate in ``core/fit.py``.

"GPU offload: Automatic" travels in ``LoadOptions.n_gpu_layers`` as
``GPU_LAYERS_AUTOMATIC`` and becomes a layer count only on the thread that loads, after
the previous model is freed (``resolve_gpu_layers``): measured any earlier, the old
model's GPU memory would count as taken. Unresolved, llama.cpp reads the negative
value as "all layers", which was Automatic's meaning before it measured.
"""

from __future__ import annotations

import logging
import platform
import sys
from dataclasses import replace
from pathlib import Path

from llamadesk.core import hardware as host
from llamadesk.core.fit import (
    CacheTypes,
    MemoryBudget,
    ModelShape,
    choose_gpu_layers,
    context_size,
)
from llamadesk.core.platform_support import automatic_offload_allowed
from llamadesk.core.settings import GPU_LAYERS_AUTO, HardwareSettings
from llamadesk.services.engine_types import LoadOptions
from llamadesk.services.gpu_probe import GpuMemory, probe_gpus

log = logging.getLogger(__name__)

#: ``LoadOptions.n_gpu_layers`` for "choose by free GPU memory when loading".
GPU_LAYERS_AUTOMATIC = -2


def memory_budget(gpus: GpuMemory | None = None) -> MemoryBudget:
    """Free RAM and free GPU memory now (``gpus``: an earlier GPU measurement)."""
    gpus = gpus if gpus is not None else probe_gpus()
    return MemoryBudget.from_hardware(host.probe(), gpus.total_bytes, gpus.free_bytes)


def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can offload layers to a GPU (llama.cpp is imported
    on the first call, not with this module: it is on the window's start-up path)."""
    from llamadesk.services.llama_runtime import supports_gpu_offload as supported

    return bool(supported())


def offload_setting(hardware: HardwareSettings) -> int:
    """``LoadOptions.n_gpu_layers`` for the hardware settings: 0 where this llama.cpp
    build cannot offload, ``GPU_LAYERS_AUTOMATIC`` for Automatic (0 on Intel Macs,
    whose Metal llama.cpp is slower than their CPU), else the count (-1: all layers)."""
    supported = supports_gpu_offload()
    if supported and hardware.gpu_layers == GPU_LAYERS_AUTO:
        if not automatic_offload_allowed(sys.platform, platform.machine()):
            return 0
        return GPU_LAYERS_AUTOMATIC
    return hardware.n_gpu_layers(supported)


def automatic_gpu_layers(model_path: str, n_ctx: int, cache: CacheTypes,
                         gpus: GpuMemory | None = None) -> int:
    """How many layers of the model file fit the GPUs' free memory now, leaving room
    for the context cache of ``n_ctx`` tokens (capped at the model's trained context)
    and compute buffers; 0 without a GPU."""
    gpus = gpus if gpus is not None else probe_gpus()
    free = gpus.free_bytes
    if free is None:
        return 0
    # Here, not with the module: the window's start-up imports this one.
    from llamadesk.core.gguf_validate import GGUFValidationError, read_metadata

    path = Path(model_path)
    try:
        meta = read_metadata(path)
        size = path.stat().st_size
    except (OSError, GGUFValidationError) as exc:
        # The load reports the file's problem; a layer count is no place for it.
        log.warning("cannot size %s for the GPU: %s", path.name, exc)
        return 0
    layers = choose_gpu_layers(size, ModelShape.from_metadata(meta),
                               context_size(n_ctx, meta.context_length), cache, free)
    log.info("GPU offload Automatic: %d layers of %s (%d MiB of GPU memory free)", layers,
             path.name, free // (1024 * 1024))
    return layers


def resolve_gpu_layers(options: LoadOptions, model_path: str,
                       gpus: GpuMemory | None = None) -> LoadOptions:
    """``options`` with Automatic turned into a layer count for the model file (call it
    where the model is loaded, once the previous one is freed); other settings as they
    are."""
    if options.n_gpu_layers != GPU_LAYERS_AUTOMATIC:
        return options
    cache = CacheTypes.for_options(options.kv_cache_type, options.flash_attn)
    return replace(options, n_gpu_layers=automatic_gpu_layers(model_path, options.n_ctx,
                                                               cache, gpus))
