"""Will this model fit this machine? A pure estimate, shown before download and load.

    needed = weights + KV cache + working memory
    KV cache = layers × context × KV heads × head size × 2 (keys and values) × bytes each

The weights are the file's size (llama.cpp maps the file; nearly all of it is tensors).
The shape comes from the GGUF header when the file is at hand, from the catalog before
download. Working memory (llama.cpp's compute buffers, the app) is a rough allowance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llamadesk.core.catalog import ArchitectureHint
from llamadesk.core.gguf_validate import GGUFMetadata
from llamadesk.core.hardware import Hardware
from llamadesk.core.units import format_bytes

F16_BYTES = 2  # llama.cpp's default KV cache type
OVERHEAD_BASE = 300_000_000
OVERHEAD_FRACTION = 0.05
#: Leave this share of free memory to the OS and other apps before calling it a fit.
COMFORT = 0.85
#: Without the model's shape, guess the KV cache as this share of the weights per 4k tokens.
UNKNOWN_KV_SHARE_PER_4K = 0.125


class FitLabel(StrEnum):
    """The verdict shown next to a file."""

    FITS = "fits"
    TIGHT = "tight"
    WONT_FIT = "won't fit"


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
class MemoryBudget:
    """What the machine offers: RAM now, and GPU memory when known."""

    total_ram: int
    available_ram: int
    vram_total: int | None = None
    vram_free: int | None = None

    @classmethod
    def from_hardware(cls, hardware: Hardware, vram_total: int | None = None,
                      vram_free: int | None = None) -> MemoryBudget:
        """From a hardware probe (plus GPU numbers, which the probe does not know)."""
        return cls(hardware.total_ram, hardware.available_ram, vram_total, vram_free)


@dataclass(frozen=True)
class FitEstimate:
    """The estimate and its verdict, with a sentence that explains it."""

    label: FitLabel
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    n_ctx: int
    on_gpu: bool
    explanation: str

    @property
    def needed_bytes(self) -> int:
        """All the memory the model needs at this context size."""
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes


def kv_cache_bytes(shape: ModelShape, n_ctx: int, bytes_per_element: int = F16_BYTES) -> int:
    """Keys and values for every layer, position and KV head."""
    return shape.block_count * n_ctx * shape.head_count_kv * shape.head_dim * 2 * bytes_per_element


def overhead_bytes(weights_bytes: int) -> int:
    """A rough allowance for compute buffers and the app itself."""
    return OVERHEAD_BASE + int(weights_bytes * OVERHEAD_FRACTION)


def estimate_fit(
    weights_bytes: int,
    shape: ModelShape | None,
    n_ctx: int,
    budget: MemoryBudget,
    *,
    bytes_per_element: int = F16_BYTES,
    gpu_offload: bool = False,
) -> FitEstimate:
    """Estimate the memory a model needs at ``n_ctx`` and label it against ``budget``.

    With GPU offload and known free VRAM, a model that fits there fits; otherwise
    (llama.cpp can split layers) the verdict is made against RAM.
    """
    if shape is not None:
        kv = kv_cache_bytes(shape, n_ctx, bytes_per_element)
        kv_note = f"{format_bytes(kv)} for a {n_ctx:,}-token context"
    else:
        kv = int(weights_bytes * UNKNOWN_KV_SHARE_PER_4K * n_ctx / 4096)
        kv_note = f"about {format_bytes(kv)} (guessed) for a {n_ctx:,}-token context"
    extra = overhead_bytes(weights_bytes)
    needed = weights_bytes + kv + extra
    parts = (f"needs about {format_bytes(needed)} ({format_bytes(weights_bytes)} weights + "
             f"{kv_note} + {format_bytes(extra)} working memory)")

    def result(label: FitLabel, why: str, on_gpu: bool = False) -> FitEstimate:
        return FitEstimate(label, weights_bytes, kv, extra, n_ctx, on_gpu,
                           f"{label.value.capitalize()}: {parts}; {why}")

    if gpu_offload and budget.vram_free is not None and needed <= budget.vram_free * COMFORT:
        return result(FitLabel.FITS, f"{format_bytes(budget.vram_free)} of GPU memory is free.",
                      on_gpu=True)
    ram = (f"{format_bytes(budget.available_ram)} of {format_bytes(budget.total_ram)} RAM "
           "is free")
    if needed <= budget.available_ram * COMFORT:
        return result(FitLabel.FITS, f"{ram}.")
    if needed <= budget.available_ram:
        return result(FitLabel.TIGHT, f"{ram}, which leaves little for other apps.")
    if needed <= budget.total_ram * COMFORT:
        return result(FitLabel.TIGHT, f"only {ram}: close other apps, or choose a smaller "
                                      "quantisation or context.")
    return result(FitLabel.WONT_FIT, f"this machine has {format_bytes(budget.total_ram)} RAM "
                                     "in all: choose a smaller quantisation or model.")
