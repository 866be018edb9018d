"""A stand-in reference: pp/tg measured through llama-cpp-python directly, no app.

Used in ``--quick`` mode (where llama-bench is not built) and as a diagnostic beside
llama-bench in full runs: it separates what llama-cpp-python's own wrapper costs from
what the app adds. Runs in its own process, like llama-bench, and prints JSON.

    python bench/pyref.py MODEL --threads 2 --flash-attn 0 --pp 512 --tg 128 \
        [--n-ctx 4096] [--n-batch 512] [--depth 0]
"""

from __future__ import annotations

import argparse
import json
import time


def measure(model: str, *, threads: int, flash_attn: bool, pp: int, tg: int, n_ctx: int,
            n_batch: int, depth: int = 0) -> dict[str, float]:
    """Prompt (``pp`` tokens in batches) and decode (``tg`` single tokens) rates, each
    after ``depth`` tokens of context, timed like llama-bench: llama_decode only."""
    import llama_cpp

    from llamadesk.services.kv_context import UBATCH

    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_batch=n_batch,
                          n_ubatch=min(n_batch, UBATCH),
                          n_threads=threads, n_threads_batch=threads,
                          flash_attn=flash_attn, verbose=False)
    n_vocab = llm.n_vocab()
    tokens = [(i * 7919) % (n_vocab - 100) + 50 for i in range(depth + max(pp, tg) + 1)]
    out: dict[str, float] = {}
    # warm-up, as llama-bench does
    llm.reset()
    llm._ctx.kv_cache_clear()
    llm.eval(tokens[:8])
    if pp:
        llm.reset()
        llm._ctx.kv_cache_clear()
        if depth:
            llm.eval(tokens[:depth])
        started = time.perf_counter()
        llm.eval(tokens[depth:depth + pp])
        out["pp_tps"] = pp / (time.perf_counter() - started)
    if tg:
        llm.reset()
        llm._ctx.kv_cache_clear()
        if depth:
            llm.eval(tokens[:depth])
        started = time.perf_counter()
        for t in tokens[depth:depth + tg]:
            llm.eval([t])
        out["tg_tps"] = tg / (time.perf_counter() - started)
    llm.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--flash-attn", type=int, default=0)
    p.add_argument("--pp", type=int, default=0)
    p.add_argument("--tg", type=int, default=0)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--n-batch", type=int, default=512)
    p.add_argument("--depth", type=int, default=0)
    a = p.parse_args()
    print(json.dumps(measure(a.model, threads=a.threads, flash_attn=bool(a.flash_attn),
                             pp=a.pp, tg=a.tg, n_ctx=a.n_ctx, n_batch=a.n_batch,
                             depth=a.depth)))


if __name__ == "__main__":
    main()
