#!/usr/bin/env python3
"""LlamaDesk's benchmark suite: the app against llama.cpp itself and its own goals.

    python bench/run.py                 every metric (builds llama-bench the first time)
    python bench/run.py --quick         tiny sizes, llama-cpp-python as the reference
    python bench/run.py --only store decode --runs 7

Prints a table and writes bench/results/latest.json (``--output`` to change). See
docs/performance.md for what each metric means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from common import RESULTS_DIR, Metric, machine_info, now_iso, set_quick, versions  # noqa: E402

#: Groups of metrics, in the order they run; ``--only`` picks among them.
GROUPS = ["store", "store_encrypted", "decode", "prompt", "ttft", "longchat", "stop", "gui",
          "launch", "memory", "download", "render", "api", "replay", "docs",
          "docs_vectors"]
#: Groups measured through the app with the bundled model loaded.
MODEL_GROUPS = ("decode", "prompt", "ttft", "longchat", "stop")


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def table(metrics: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    lines = ["| metric | value | goal | met | spread (min–max) | reference |",
             "|---|---|---|---|---|---|"]
    for m in metrics:
        met = {True: "yes", False: "**no**", None: "not measured"}[m["met"]]
        if m.get("informational") and m["measured"]:
            met = "information"
        spread = (f"{_fmt(m['spread']['min'], m['unit'])} – {_fmt(m['spread']['max'], m['unit'])}"
                  if m["spread"] else "")
        ref = ""
        if m.get("reference") and m.get("numerator"):
            n, r = m["numerator"], m["reference"]
            ref = (f"{n['median']:.1f} ÷ {r['median']:.1f} {r['unit']} ({r['name']})")
        value = _fmt(m["value"], m["unit"])
        goal = m["goal"]["text"] + ("" if m["unit"] == "×" else f" {m['unit']}")
        notes = f" — {m['notes']}" if not m["measured"] else ""
        lines.append(f"| {m['title']} | {value} | {goal} | {met}{notes} | {spread} | {ref} |")
    return "\n".join(lines)


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(name)


def _reference(quick: bool, threads: int, flash_attn: bool, n_ctx: int, n_batch: int,
               model: Path, kv_cache_type: str = "f16") -> Any:
    from model_metrics import Reference

    binary = None
    if not quick:
        import reference

        binary = reference.binary_path()
        if binary is None:
            print("building llama-bench (once; several minutes on 2 cores)…", flush=True)
            binary = reference.build()
    return Reference(model, threads, flash_attn, n_ctx, n_batch, binary, kv_cache_type)


def _report(args: argparse.Namespace, runs: int, started: float, opts: Any, model: Path,
            metrics: list[Metric], errors: dict[str, str], ref: Any) -> dict[str, Any]:
    from llamadesk.core import bundled

    reference_info = {
        "kind": ref.kind if ref else None,
        "binary": str(ref.llama_bench) if ref and ref.llama_bench else None,
        **(ref.build if ref else {}),
    }
    return {
        "date": now_iso(),
        "quick": args.quick,
        "runs_per_metric": runs,
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": machine_info(opts.n_threads),
        "versions": versions(ref.build if ref else None),
        "model": {"file": model.name, "bytes": model.stat().st_size,
                  "id": bundled.manifest().id},
        "app_settings": {"n_threads": opts.n_threads, "flash_attn": opts.flash_attn,
                         "kv_cache_type": opts.kv_cache_type,
                         "n_ctx": opts.n_ctx, "n_batch": opts.n_batch,
                         "n_gpu_layers": opts.n_gpu_layers},
        "reference": reference_info,
        "metrics": [m.to_json() for m in metrics],
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and llama-cpp-python as the reference (smoke test)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, metavar="NAME",
                        help=f"run only these groups: {', '.join(GROUPS)}")
    parser.add_argument("--runs", type=int, default=None,
                        help="measured runs per metric, after a warm-up (default 5; quick 1)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    set_quick(args.quick)
    wanted = set(args.only or GROUPS)

    def only(name: str) -> bool:
        return name in wanted

    from llamadesk.core.settings import AppSettings
    from llamadesk.services.resolver import bundled_spec

    started = time.perf_counter()
    spec = bundled_spec(AppSettings())
    opts = spec.options
    model = Path(spec.path)
    metrics: list[Metric] = []
    errors: dict[str, str] = {}
    ref = None

    def attempt(group: str, fn: Callable[[], list[Metric]]) -> None:
        if not only(group):
            return
        print(f"[{time.perf_counter() - started:6.1f}s] {group}…", flush=True)
        try:
            metrics.extend(fn())
        except Exception as exc:  # one broken metric must not lose the others
            traceback.print_exc()
            errors[group] = f"{type(exc).__name__}: {exc}"
        write()  # after every group, so a long run that is cut short keeps its results

    def write() -> dict[str, Any]:
        report = _report(args, runs, started, opts, model, metrics, errors, ref)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        return report

    # Quick mode is a smoke test: one thread keeps it short on a busy machine.
    settings = {"hardware": {"n_threads": 1}} if args.quick else None

    with tempfile.TemporaryDirectory(prefix="llamadesk-bench-") as tmp:
        work = Path(tmp)
        # The app's store key lives in the keychain; this machine may have none.
        import bench_keychain

        bench_keychain.install(work)
        import store_metrics

        attempt("store", lambda: store_metrics.run(work, args.quick, runs))
        attempt("store_encrypted", lambda: store_metrics.run_encrypted(work, args.quick, runs))
        if wanted & {"launch", "memory"}:
            attempt("launch" if only("launch") else "memory",
                    lambda: _module("launch_metrics").run(
                        work, args.quick, runs, memory=only("memory"), launch=only("launch"),
                        model_bytes=model.stat().st_size, settings=settings))
        attempt("download", lambda: _module("download_metrics").run(work, args.quick, runs))

        harness = None
        if wanted & set(MODEL_GROUPS):
            import model_metrics
            from harness import AppHarness

            if args.quick:
                opts = replace(opts, n_threads=1)
            ref = _reference(args.quick, opts.n_threads, opts.flash_attn, opts.n_ctx,
                             opts.n_batch, model, opts.kv_cache_type)
            try:
                harness = AppHarness(work / "home-model", settings=settings)
            except Exception as exc:
                traceback.print_exc()
                errors["app"] = f"{type(exc).__name__}: {exc}"
            if harness is not None:
                h, r = harness, ref
                for group in MODEL_GROUPS:
                    attempt(group, lambda g=group: model_metrics.run_all(
                        h, r, args.quick, runs, lambda name, g=g: name == g))
                harness.close()

        attempt("gui", lambda: _module("gui_metrics").run(work, args.quick, runs, settings))
        attempt("render", lambda: _module("render_metrics").run(args.quick, runs))
        attempt("api", lambda: _module("api_metrics").run(work, args.quick, runs, settings))
        # One thread per engine, as the suite's sample: a correctness row, not a timing,
        # and it runs as well beside other work.
        attempt("replay", lambda: _module("replay_metrics").run(args.quick, 1))
        attempt("docs", lambda: _module("docs_metrics").run(work, args.quick, runs))
        attempt("docs_vectors",
                lambda: _module("docs_vector_metrics").run(work, args.quick, runs))

    results = write()["metrics"]
    print()
    print(table(results))
    print(f"\nreference: {ref.kind if ref else None}; threads {opts.n_threads}, flash-attn "
          f"{opts.flash_attn}, n_ctx {opts.n_ctx}; written to {args.output}")
    for group, error in errors.items():
        print(f"ERROR in {group}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(status)
