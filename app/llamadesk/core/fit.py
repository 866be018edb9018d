"""Will this model fit this machine, and how much of it goes to the GPU? Pure estimates,
shown before download and load, and the layer count "GPU offload: Automatic" loads with.

    needed   = weights + KV cache + working memory
    KV cache = layers × context × KV heads × head size × (bytes per key + bytes per value)

The weights are the file's size (llama.cpp maps the file; nearly all of it is tensors).
The shape comes from the GGUF header when the file is at hand, from the catalog before
download. The context is the one asked for, capped at the model's trained context (as
the loader caps it). The cache holds keys and values of the types the hardware settings
choose: 8-bit keys by default (q8_0: 32 values in 34 bytes), and 8-bit values only with
flash attention, as llama.cpp requires. Working memory (llama.cpp's compute buffers,
the app) is a rough allowance.

With layers on a GPU, each offloaded layer takes its share of the weights
(weights ÷ (layers + 1): the output layer counts as one more, as in llama.cpp's
``n_gpu_layers``) and its part of the KV cache to GPU memory, plus a compute-buffer
allowance there; the rest stays in RAM.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from llamadesk.core.catalog import ArchitectureHint
from llamadesk.core.hardware import Hardware
from llamadesk.core.settings import (
    GPU_LAYERS_ALL,
    GPU_LAYERS_AUTO,
    GPU_LAYERS_NONE,
    HardwareSettings,
)
from llamadesk.core.units import format_bytes

if TYPE_CHECKING:
    from llamadesk.core.gguf_validate import GGUFMetadata

OVERHEAD_BASE = 300_000_000
OVERHEAD_FRACTION = 0.05
#: Leave this share of free RAM to the OS and other apps before calling it a fit.
COMFORT = 0.85
#: Use at most this share of free GPU memory (the desktop and other apps use it too).
GPU_COMFORT = 0.90
#: GPU compute buffers: a base, plus attention scores for one 512-token batch of 32
#: heads in f32 per token of context (without flash attention they are materialised).
GPU_COMPUTE_BASE = 256 * 1024 * 1024
GPU_COMPUTE_PER_TOKEN = 512 * 32 * 4
#: Without the model's shape, guess the KV cache as this share of the weights per 4k tokens.
UNKNOWN_KV_SHARE_PER_4K = 0.125
#: Bytes per block of values, values per block, of the context cache types offered.
CACHE_TYPE_BLOCKS = {"f16": (2, 1), "q8_0": (34, 32)}


class FitLabel(StrEnum):
    """The verdict shown next to a file."""

    FITS = "fits"
    TIGHT = "tight"
    WONT_FIT = "won't fit"


_SEVERITY = {FitLabel.FITS: 0, FitLabel.TIGHT: 1, FitLabel.WONT_FIT: 2}


@dataclass(frozen=True)
class ModelShape:
    """The numbers that size the KV cache."""

    block_count: int
    head_count_kv: int
    head_dim: int

    @classmethod
    def from_metadata(cls, meta: GGUFMetadata) -> ModelShape | None:
        """From a GGUF header; None if it lacks a number we need."""
        head_dim = meta.head_dim
        kv_heads = meta.head_count_kv or meta.head_count
        if not (meta.block_count and kv_heads and head_dim):
            return None
        return cls(meta.block_count, kv_heads, head_dim)

    @classmethod
    def from_hint(cls, hint: ArchitectureHint) -> ModelShape:
        """From a catalog entry's architecture numbers."""
        return cls(hint.block_count, hint.head_count_kv,
                   hint.embedding_length // hint.head_count)


@dataclass(frozen=True)
class CacheTypes:
    """The context cache's key and value types (llama.cpp's names)."""

    keys: str = "f16"
    values: str = "f16"

    @classmethod
    def for_options(cls, kv_cache_type: str, flash_attn: bool) -> CacheTypes:
        """What the engine loads with: keys of the chosen type, values too only with
        flash attention; an unknown type is f16."""
        kind = kv_cache_type if kv_cache_type in CACHE_TYPE_BLOCKS else "f16"
        return cls(kind, kind if flash_attn else "f16")

    @classmethod
    def for_settings(cls, hardware: HardwareSettings) -> CacheTypes:
        """What the engine loads with under these hardware settings."""
        return cls.for_options(hardware.kv_cache_type, hardware.flash_attn)


@dataclass(frozen=True)
class MemoryBudget:
    """What the machine offers: RAM now, and GPU memory now where llama.cpp has a GPU
    (``vram_total`` None: no GPU it can use)."""

    total_ram: int
    available_ram: int
    vram_total: int | None = None
    vram_free: int | None = None

    @property
    def has_gpu(self) -> bool:
        """Whether llama.cpp can put layers on a GPU here."""
        return self.vram_total is not None

    @classmethod
    def from_hardware(cls, hardware: Hardware, vram_total: int | None = None,
                      vram_free: int | None = None) -> MemoryBudget:
        """From a hardware probe (plus GPU numbers, which the probe does not know)."""
        return cls(hardware.total_ram, hardware.available_ram, vram_total, vram_free)


@dataclass(frozen=True)
class FitEstimate:
    """The estimate and its verdict, with a sentence that explains it.

    ``gpu_layers`` is the value for llama.cpp's ``n_gpu_layers`` (-1: all);
    ``layers_on_gpu`` of ``layer_count`` (None when the shape is unknown) are counted as
    offloaded; ``ram_bytes`` and ``vram_bytes`` split ``needed_bytes`` between them.
    """

    label: FitLabel
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    n_ctx: int
    gpu_layers: int
    layers_on_gpu: int
    layer_count: int | None
    ram_bytes: int
    vram_bytes: int
    explanation: str

    @property
    def needed_bytes(self) -> int:
        """All the memory the model needs at this context size, RAM and GPU together."""
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes


def cache_bytes(values: int, cache_type: str) -> int:
    """Bytes that ``values`` cache entries of ``cache_type`` take (whole blocks)."""
    size, per_block = CACHE_TYPE_BLOCKS.get(cache_type, CACHE_TYPE_BLOCKS["f16"])
    return -(-values // per_block) * size


def kv_cache_bytes(shape: ModelShape, n_ctx: int, cache: CacheTypes) -> int:
    """Keys and values for every layer, position and KV head."""
    row = shape.head_count_kv * shape.head_dim  # one layer, one position
    return shape.block_count * n_ctx * (cache_bytes(row, cache.keys)
                                        + cache_bytes(row, cache.values))


def overhead_bytes(weights_bytes: int) -> int:
    """A rough allowance for compute buffers and the app itself."""
    return OVERHEAD_BASE + int(weights_bytes * OVERHEAD_FRACTION)


def gpu_compute_bytes(weights_bytes: int, n_ctx: int) -> int:
    """A rough allowance for llama.cpp's compute buffers on the GPU."""
    return GPU_COMPUTE_BASE + int(weights_bytes * OVERHEAD_FRACTION) + \
        n_ctx * GPU_COMPUTE_PER_TOKEN


def context_size(n_ctx: int, context_length: int | None) -> int:
    """The context a model loads with: the one asked for, capped at its trained one."""
    return min(n_ctx, context_length) if context_length else n_ctx


def _kv_estimate(weights_bytes: int, shape: ModelShape | None, n_ctx: int,
                 cache: CacheTypes) -> int:
    if shape is not None:
        return kv_cache_bytes(shape, n_ctx, cache)
    return int(weights_bytes * UNKNOWN_KV_SHARE_PER_4K * n_ctx / 4096)


def _split(weights_bytes: int, kv: int, shape: ModelShape | None, n_ctx: int,
           layers: int) -> tuple[int, int]:
    """(GPU bytes, layers counted) when ``layers`` of the model go to the GPU."""
    units = shape.block_count + 1 if shape is not None else 1
    on = units if layers < 0 else min(layers, units)
    if on == 0:
        return 0, 0
    blocks = shape.block_count if shape is not None else 1
    gpu = (weights_bytes * on // units + kv * min(on, blocks) // blocks
           + gpu_compute_bytes(weights_bytes, n_ctx))
    return gpu, on


def gpu_bytes(weights_bytes: int, shape: ModelShape | None, n_ctx: int, cache: CacheTypes,
              layers: int) -> int:
    """GPU memory that ``layers`` layers (-1: all) take: their share of the weights,
    their part of the KV cache and the compute buffers; 0 for none."""
    kv = _kv_estimate(weights_bytes, shape, n_ctx, cache)
    return _split(weights_bytes, kv, shape, n_ctx, layers)[0]


def choose_gpu_layers(weights_bytes: int, shape: ModelShape | None, n_ctx: int,
                      cache: CacheTypes, vram_free: int) -> int:
    """How many layers to offload so that they, their part of the KV cache and the
    compute buffers fit in ``vram_free`` with room to spare. A model of unknown shape
    goes to the GPU whole or not at all."""
    kv = _kv_estimate(weights_bytes, shape, n_ctx, cache)
    usable = int(vram_free * GPU_COMFORT)
    units = shape.block_count + 1 if shape is not None else 1
    best = 0
    for layers in range(1, units + 1):
        if _split(weights_bytes, kv, shape, n_ctx, layers)[0] > usable:
            break
        best = layers
    if shape is None and best:
        return -1
    return best


def gpu_layers_for(hardware: HardwareSettings, weights_bytes: int, shape: ModelShape | None,
                   n_ctx: int, vram_free: int | None) -> int:
    """The value for llama.cpp's ``n_gpu_layers`` under ``hardware``'s GPU setting, with
    ``vram_free`` bytes free on the GPU (None: no GPU): Automatic chooses what fits."""
    if vram_free is None:
        return 0
    if hardware.gpu_layers != GPU_LAYERS_AUTO:
        return hardware.n_gpu_layers(True)
    return choose_gpu_layers(weights_bytes, shape, n_ctx, CacheTypes.for_settings(hardware),
                             vram_free)


def _ram_verdict(needed: int, budget: MemoryBudget) -> tuple[FitLabel, str]:
    ram = (f"{format_bytes(budget.available_ram)} of {format_bytes(budget.total_ram)} RAM "
           "is free")
    if needed <= budget.available_ram * COMFORT:
        return FitLabel.FITS, ram
    if needed <= budget.available_ram:
        return FitLabel.TIGHT, f"{ram}, which leaves little for other apps"
    if needed <= budget.total_ram * COMFORT:
        return FitLabel.TIGHT, (f"only {ram}: close other apps, or choose a smaller "
                                "quantisation or context")
    return FitLabel.WONT_FIT, (f"this machine has {format_bytes(budget.total_ram)} RAM in "
                               "all: choose a smaller quantisation or model")


def _gpu_verdict(needed: int, free: int, on: int,
                 layer_count: int | None) -> tuple[FitLabel, str]:
    placed = f"{on} of {layer_count} layers" if layer_count is not None else "all layers"
    gpu = (f"{placed} on the GPU take about {format_bytes(needed)} of the "
           f"{format_bytes(free)} of GPU memory free")
    if needed <= free * GPU_COMFORT:
        return FitLabel.FITS, gpu
    if needed <= free:
        return FitLabel.TIGHT, f"{gpu}, which leaves little for other apps"
    return FitLabel.WONT_FIT, f"{gpu}: set GPU offload to Automatic or fewer layers"


def estimate_fit(
    weights_bytes: int,
    shape: ModelShape | None,
    n_ctx: int,
    budget: MemoryBudget,
    *,
    context_length: int | None = None,
    hardware: HardwareSettings | None = None,
    gpu_offload: bool | None = None,
) -> FitEstimate:
    """Estimate the memory a model needs at ``n_ctx`` (capped at ``context_length``, its
    trained context) under ``hardware`` (GPU setting, cache types; the app's defaults
    when None) and label it against ``budget``. ``gpu_offload`` True or False stands for
    a GPU setting of all layers or none."""
    hardware = hardware or HardwareSettings()
    if gpu_offload is not None:
        hardware = HardwareSettings(
            gpu_layers=GPU_LAYERS_ALL if gpu_offload else GPU_LAYERS_NONE,
            flash_attn=hardware.flash_attn, kv_cache_type=hardware.kv_cache_type)
    n_ctx = context_size(n_ctx, context_length)
    kv = _kv_estimate(weights_bytes, shape, n_ctx, CacheTypes.for_settings(hardware))
    kv_note = (f"{format_bytes(kv)} for a {n_ctx:,}-token context" if shape is not None
               else f"about {format_bytes(kv)} (guessed) for a {n_ctx:,}-token context")
    extra = overhead_bytes(weights_bytes)
    layers = gpu_layers_for(hardware, weights_bytes, shape, n_ctx,
                            (budget.vram_free or 0) if budget.has_gpu else None)
    vram, on = _split(weights_bytes, kv, shape, n_ctx, layers)
    offloaded = vram - gpu_compute_bytes(weights_bytes, n_ctx) if on else 0
    ram = weights_bytes + kv + extra - offloaded
    label, why = _ram_verdict(ram, budget)
    layer_count = shape.block_count + 1 if shape is not None else None
    if on:
        gpu_label, gpu_why = _gpu_verdict(vram, budget.vram_free or 0, on, layer_count)
        why = (f"{gpu_why}; {format_bytes(ram)} stays in RAM, and {why}" if ram > extra
               else f"{gpu_why}; {why}")
        if _SEVERITY[gpu_label] > _SEVERITY[label]:
            label = gpu_label
    needed = weights_bytes + kv + extra
    explanation = (f"{label.value.capitalize()}: needs about {format_bytes(needed)} "
                   f"({format_bytes(weights_bytes)} weights + {kv_note} + "
                   f"{format_bytes(extra)} working memory); {why}.")
    return FitEstimate(label, weights_bytes, kv, extra, n_ctx, layers, on, layer_count,
                       ram, vram, explanation)
