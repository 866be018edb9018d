#!/usr/bin/env python3
"""Does "GPU offload: Automatic" choose layers that fit, and does llama.cpp place them?

    python bench/gpu_fit_check.py [--n-ctx 4096] [--output bench/results/gpu_fit.json]

On a machine whose llama.cpp has a GPU backend it loads the bundled model twice through
the app's engine with Automatic: once against the free GPU memory measured now (the
small model goes there whole), and once against just enough free memory for about half
of its layers. Each time it reports the free GPU memory before and
after, the layers chosen, the layers llama.cpp says it offloaded ("offloaded N/M layers
to GPU" in its log) and the GPU memory used against the estimate. It exits 1 when
llama.cpp placed a different number of layers than chosen (or a load failed), and 0
with a message on a machine without a GPU backend, where Automatic must choose 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
MIB = 1024 * 1024
OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
ASSIGNED = re.compile(r"layer +\d+ assigned to device (\S+?),")


class _OffloadLog(logging.Handler):
    """Keeps llama.cpp's "offloaded N/M layers to GPU" line and counts its "layer i
    assigned to device X" lines for devices other than the CPU (logged at debug level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.placed: tuple[int, int] | None = None
        self.assigned_off_cpu = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = OFFLOADED.search(message)
        if found:
            self.placed = (int(found[1]), int(found[2]))
        assigned = ASSIGNED.search(message)
        if assigned and assigned[1] != "CPU":
            self.assigned_off_cpu += 1


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value / MIB:,.0f} MiB"


def _load_once(label: str, model: Path, n_ctx: int, cap: int | None) -> dict[str, Any]:
    """Load with Automatic (against ``cap`` bytes of free memory when given), generate a
    few tokens, and compare what llama.cpp did with what was chosen."""
    from llamadesk.core.conversation import Message, Role, SamplingParams
    from llamadesk.core.fit import CacheTypes, ModelShape, context_size, gpu_bytes
    from llamadesk.core.gguf_validate import read_metadata
    from llamadesk.core.settings import AppSettings
    from llamadesk.services.engine import GenerationRequest, LlamaEngine
    from llamadesk.services.fit_check import GPU_LAYERS_AUTOMATIC, resolve_gpu_layers
    from llamadesk.services.gpu_probe import GpuMemory, probe_gpus
    from llamadesk.services.resolver import load_options

    settings = AppSettings()  # GPU offload: Automatic, the app's default
    options = load_options(settings, n_ctx)
    if options.n_gpu_layers != GPU_LAYERS_AUTOMATIC:
        raise SystemExit(f"the settings did not ask for Automatic ({options.n_gpu_layers})")
    before = probe_gpus()
    seen = before
    if cap is not None and before.devices:
        first = before.devices[0]
        seen = GpuMemory((replace(first, free_bytes=min(cap, first.free_bytes)),))
    resolved = resolve_gpu_layers(options, str(model), seen)
    meta = read_metadata(model)
    layer_count = (meta.block_count or 0) + 1
    chosen = layer_count if resolved.n_gpu_layers < 0 else resolved.n_gpu_layers

    handler = _OffloadLog()
    llama_log = logging.getLogger("llama.cpp")
    llama_log.addHandler(handler)
    llama_log.setLevel(logging.DEBUG)
    engine = LlamaEngine()
    try:
        engine.load(model, resolved, model_id="bundled")
        after = probe_gpus()
        question = Message(id=0, conversation_id=0, parent_id=None, role=Role.USER,
                           content="Say hello.", created_at=0.0)
        reply = engine.generate(GenerationRequest((question,), "",
                                                  SamplingParams(max_tokens=8, seed=1)),
                                lambda _text: None, threading.Event())
    finally:
        engine.unload()
        llama_log.removeHandler(handler)
    used = (before.free_bytes or 0) - (after.free_bytes or 0)
    estimated_vram = gpu_bytes(model.stat().st_size, ModelShape.from_metadata(meta),
                               context_size(n_ctx, meta.context_length),
                               CacheTypes.for_settings(settings.hardware), chosen)
    placed = handler.placed[0] if handler.placed else None
    result = {
        "run": label,
        "free_before_bytes": before.free_bytes,
        "free_seen_bytes": seen.free_bytes,
        "free_after_bytes": after.free_bytes,
        "gpu_used_bytes": used,
        "gpu_estimated_bytes": estimated_vram,
        "layers_chosen": chosen,
        "layers_placed": placed,
        "layer_count": layer_count,
        "llama_layer_count": handler.placed[1] if handler.placed else None,
        "layers_assigned_off_cpu": handler.assigned_off_cpu,
        "reply_tokens": reply.stats.completion_tokens,
        "placed_as_chosen": placed == chosen,
    }
    print(f"{label}: free {_mib(before.free_bytes)} (seen {_mib(seen.free_bytes)}) → chose "
          f"{chosen}/{layer_count} layers; llama.cpp offloaded "
          f"{placed if placed is not None else '?'}; free after {_mib(after.free_bytes)}: "
          f"used {_mib(used)} against {_mib(estimated_vram)} estimated")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "gpu_fit.json")
    args = parser.parse_args(argv)

    from llamadesk.core import bundled
    from llamadesk.core.fit import GPU_COMFORT, CacheTypes, ModelShape, gpu_bytes
    from llamadesk.core.gguf_validate import read_metadata
    from llamadesk.core.settings import HardwareSettings
    from llamadesk.services.engine import (
        install_llama_log_routing,
        supports_gpu_offload,
        system_info,
    )
    from llamadesk.services.fit_check import automatic_gpu_layers
    from llamadesk.services.gpu_probe import probe_gpus

    install_llama_log_routing()
    try:
        model = bundled.locate().path
    except bundled.BundledModelError as exc:
        print(f"gpu_fit_check: {exc}", file=sys.stderr)
        return 1
    gpus = probe_gpus()
    if not gpus.devices:
        cache = CacheTypes.for_settings(HardwareSettings())
        chosen = automatic_gpu_layers(str(model), args.n_ctx, cache)
        print("No GPU: this llama.cpp build offers no GPU llama.cpp can put layers on "
              f"(GPU offload supported: {supports_gpu_offload()}; {system_info()}).\n"
              f"Automatic chooses {chosen} layers; there is nothing to check on this machine.")
        return 0 if chosen == 0 else 1
    for device in gpus.devices:
        print(f"GPU {device.name} ({device.description}): {_mib(device.free_bytes)} free "
              f"of {_mib(device.total_bytes)}")

    meta = read_metadata(model)
    ctx = min(args.n_ctx, meta.context_length or args.n_ctx)
    cache = CacheTypes.for_settings(HardwareSettings())
    half = ((meta.block_count or 0) + 1) // 2
    part_cap = int(gpu_bytes(model.stat().st_size, ModelShape.from_metadata(meta), ctx, cache,
                             half) / GPU_COMFORT) + 1
    results = []
    failed = False
    for label, cap in (("measured", None), ("about half fits", part_cap)):
        try:
            result = _load_once(label, model, args.n_ctx, cap)
        except Exception as exc:  # report it and go on: the other run may still say much
            print(f"{label}: the load failed: {exc}", file=sys.stderr)
            results.append({"run": label, "error": str(exc)})
            failed = True
            continue
        results.append(result)
        failed = failed or not result["placed_as_chosen"]
    if not failed and results[1].get("layers_chosen") in (0, results[1].get("layer_count")):
        print("the capped run did not choose a partial offload; check the arithmetic",
              file=sys.stderr)
        failed = True
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"model": model.name, "n_ctx": args.n_ctx,
                                       "gpus": [d.__dict__ for d in gpus.devices],
                                       "runs": results}, indent=2), encoding="utf-8")
    print(f"{'MISMATCH' if failed else 'ok'}: results in {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
