"""What sampling costs a token on the CPU, and whether llama.cpp's backend sampling (the
sampler chain attached to the context, run inside the decode's graph) is cheaper here.
Straight on llama.cpp's bindings, the bundled model, the decode row's settings (two
threads unless told, 8-bit keys, 16-bit values, 256 cells), a 47-token prompt, stages in
alternating order each round:

* ``fixed``: one-token decodes of a fixed token, nothing sampled (llama-bench's tg);
* ``cpu``: the chain (top-k K, temperature 0.7, dist) run by ``llama_sampler_sample``
  after each decode, as llama-cpp-python does;
* ``backend``: the same chain given to the context (``llama_sampler_seq_config``), the
  token read with ``llama_get_sampled_token_ith``.

    python bench/sampler_profile.py [--top-k 40] [--tokens 128] [--rounds 5] [--threads 2]

Prints tokens/s per stage and round, the medians, and the CPU sampler's time per call
(greedy, top-k K) beside the decode's ("Decode (round 8)" in docs/performance.md).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import time
from typing import Any

import llama_cpp as lc

from llamadesk.core.bundled import locate

PROMPT = [1, *range(100, 146)]
_QUIET = lc.llama_log_callback(lambda *_args: None)  # kept alive: llama.cpp holds it


def chain(top_k: int, greedy: bool = False) -> Any:
    c = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    if greedy:
        lc.llama_sampler_chain_add(c, lc.llama_sampler_init_greedy())
        return c
    lc.llama_sampler_chain_add(c, lc.llama_sampler_init_top_k(top_k))
    lc.llama_sampler_chain_add(c, lc.llama_sampler_init_temp(0.7))
    lc.llama_sampler_chain_add(c, lc.llama_sampler_init_dist(1234))
    return c


class Context:
    """A context on ``model``; with ``backend`` the chain is attached to sequence 0."""

    def __init__(self, model: Any, threads: int, backend: Any = None) -> None:
        p = lc.llama_context_default_params()
        p.n_ctx = p.n_batch = p.n_ubatch = 256
        p.n_threads = p.n_threads_batch = threads
        p.type_k, p.type_v = lc.GGML_TYPE_Q8_0, lc.GGML_TYPE_F16
        p.flash_attn_type = 0  # off, as the app's default on a CPU
        if backend is not None:
            self._config = (lc.llama_sampler_seq_config * 1)()
            self._config[0].seq_id = 0
            self._config[0].sampler = ctypes.cast(backend, ctypes.c_void_p)
            p.samplers = ctypes.cast(self._config, ctypes.POINTER(lc.llama_sampler_seq_config))
            p.n_samplers = 1
        self.ctx = lc.llama_init_from_model(model, p)
        if not self.ctx:
            raise SystemExit("llama.cpp could not make the context")

    def reply(self, tokens: int, sampler: Any = None, backend: bool = False
              ) -> tuple[float, float, float]:
        """Tokens/s, and the mean µs of a sample call and ms of a decode."""
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        prompt = (lc.llama_token * len(PROMPT))(*PROMPT)
        lc.llama_decode(self.ctx, lc.llama_batch_get_one(prompt, len(PROMPT)))
        one = (lc.llama_token * 1)()
        sampling = decoding = 0.0
        started = time.perf_counter()
        for _ in range(tokens):
            t0 = time.perf_counter()
            if backend:
                token = lc.llama_get_sampled_token_ith(self.ctx, -1)
                lc.llama_sampler_accept(sampler, token)
            elif sampler is not None:
                token = lc.llama_sampler_sample(sampler, self.ctx, -1)
            else:
                token = 200
            t1 = time.perf_counter()
            one[0] = token
            if lc.llama_decode(self.ctx, lc.llama_batch_get_one(one, 1)) != 0:
                raise SystemExit("llama_decode failed")
            decoding += time.perf_counter() - t1
            sampling += t1 - t0
        rate = tokens / (time.perf_counter() - started)
        return rate, sampling / tokens * 1e6, decoding / tokens * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top-k", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    lc.llama_backend_init()
    lc.llama_log_set(_QUIET, ctypes.c_void_p(0))
    model = lc.llama_model_load_from_file(str(locate().path).encode(),
                                         lc.llama_model_default_params())
    cpu, greedy, attached = chain(args.top_k), chain(0, greedy=True), chain(args.top_k)
    plain, on_graph = Context(model, args.threads), Context(model, args.threads, attached)
    stages = {
        "fixed": lambda: plain.reply(args.tokens),
        "cpu": lambda: plain.reply(args.tokens, cpu),
        "greedy": lambda: plain.reply(args.tokens, greedy),
        "backend": lambda: on_graph.reply(args.tokens, attached, backend=True),
    }
    seen: dict[str, list[tuple[float, float, float]]] = {name: [] for name in stages}
    for r in range(args.rounds):
        for name in (list(stages) if r % 2 == 0 else list(reversed(stages))):
            seen[name].append(stages[name]())
        print(f"round {r}: " + ", ".join(f"{n} {v[-1][0]:.1f}" for n, v in seen.items()),
              flush=True)
    print(f"medians, {args.tokens} tokens, {args.threads} threads, top-k {args.top_k}, "
          f"load average {os.getloadavg()}:")
    for name, rows in seen.items():
        print(f"  {name:8s} {statistics.median(r[0] for r in rows):7.1f} tokens/s  "
              f"sample {statistics.median(r[1] for r in rows):6.1f} µs  "
              f"decode {statistics.median(r[2] for r in rows):5.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
