"""What the model metrics share: the texts they send, and the reference runs (llama-bench
or llama-cpp-python) the app's speeds are compared with. Both ``model_metrics`` and
``longchat_metrics`` import from here, and neither from the other."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import BENCH_DIR

STORY = ("Write a very long and detailed story about a lighthouse keeper who finds a "
         "map inside a bottle. Describe every place, person and conversation.")
FILLER = ("The quick brown fox jumps over the lazy dog while the river runs past old "
          "mills, quiet farms and a small village where bakers sell warm bread. ")


class Reference:
    """The reference runs: llama-bench when built, else llama-cpp-python directly."""

    def __init__(self, model: Path, threads: int, flash_attn: bool, n_ctx: int,
                 n_batch: int, llama_bench: Path | None, kv_cache_type: str = "f16") -> None:
        self.model = model
        self.threads = threads
        self.flash_attn = flash_attn
        # The app's context cache: keys as set, values too only with flash attention.
        self.type_k = kv_cache_type
        self.type_v = kv_cache_type if flash_attn else "f16"
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.llama_bench = llama_bench
        self.build: dict[str, Any] = {}

    @classmethod
    def for_model(cls, info: Any, llama_bench: Path | None) -> Reference:
        """The reference for a model as the app loaded it (its ``ModelInfo``): the same
        file, threads, attention, context, batch and cache types."""
        o = info.options
        return cls(Path(info.path), o.n_threads, o.flash_attn, o.n_ctx, o.n_batch,
                   llama_bench, o.kv_cache_type)

    @property
    def kind(self) -> str:
        return "llama-bench" if self.llama_bench else "llama-cpp-python (quick stand-in)"

    def bench(self, *, pp: int = 0, tg: int = 0, depth: int = 0,
              extra: list[str] | None = None) -> float:
        """Tokens/s of one run (pp or tg)."""
        if self.llama_bench is not None:
            from llamadesk.services.kv_context import UBATCH
            from reference import run_llama_bench

            args = [*(extra or []), "-ctk", self.type_k, "-ctv", self.type_v,
                    "-ub", str(min(self.n_batch, UBATCH))]  # the app's, not llama-bench's 512
            if depth:
                args += ["-d", str(depth)]
            r = run_llama_bench(self.llama_bench, self.model, threads=self.threads,
                                flash_attn=self.flash_attn, n_prompt=pp, n_gen=tg, reps=1,
                                extra=args)
            self.build = {"build_commit": r.build_commit, "build_number": r.build_number}
            return r.samples_ts[0]
        return self.python(pp=pp, tg=tg, depth=depth)

    def python(self, *, pp: int = 0, tg: int = 0, depth: int = 0,
               n_ctx: int | None = None) -> float:
        """The same through llama-cpp-python (its own process, like llama-bench)."""
        out = subprocess.run(
            [sys.executable, str(BENCH_DIR / "pyref.py"), str(self.model),
             "--threads", str(self.threads), "--flash-attn", str(int(self.flash_attn)),
             "--pp", str(pp), "--tg", str(tg), "--n-ctx", str(n_ctx or self.n_ctx),
             "--n-batch", str(self.n_batch), "--depth", str(depth)],
            check=True, capture_output=True, text=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        return float(data["pp_tps" if pp else "tg_tps"])
