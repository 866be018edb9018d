"""Replies that never depend on another chat: N seeded random operation sequences over
three conversations (switches, overflows and shifts, Stop at every stage, errors,
reloads, regenerations, edits, API requests), every greedy reply compared with a fresh
engine's reply to the same prompt (tests/support/engine_replay.py). Must be N of N."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common import ROOT, Goal, Metric, not_measured

NAME = "replay_equal_to_fresh"
TITLE = "operation sequences whose every greedy reply equals a fresh engine's"
#: The long run; the test suite runs a short sample of the same driver.
SEQUENCES = 200
LENGTH = 12
QUICK_SEQUENCES = 1
QUICK_LENGTH = 4
FIRST_SEED = 1000  # apart from the test suite's seeds


def run(quick: bool, n_threads: int) -> list[Metric]:
    """The one metric: how many of N sequences held the rule throughout."""
    n = QUICK_SEQUENCES if quick else SEQUENCES
    goal = Goal(">=", n)
    support = ROOT / "tests" / "support"
    if not (support / "engine_replay.py").exists():
        return [not_measured(NAME, TITLE, "sequences", goal,
                             "tests/support/engine_replay.py is not in this tree")]
    sys.path.insert(0, str(support))
    from engine_replay import N_CTX, ReplayDriver, ReplayMismatchError

    from llamadesk.core import bundled
    from llamadesk.services.engine import LlamaEngine, LoadOptions

    model: Path = bundled.locate().path
    options = LoadOptions(n_ctx=N_CTX, n_threads=n_threads)
    engine, fresh = LlamaEngine(32 * 1024 * 1024), LlamaEngine(32 * 1024 * 1024)
    engine.load(model, options, model_id="bundled")
    fresh.load(model, options, model_id="bundled")
    driver = ReplayDriver(engine, fresh, model, options)
    failures: list[str] = []
    started = time.perf_counter()
    try:
        for seed in range(FIRST_SEED, FIRST_SEED + n):
            try:
                driver.run(seed, QUICK_LENGTH if quick else LENGTH)
            except ReplayMismatchError as exc:
                failures.append(str(exc))
                print(f"  replay: seed {seed} FAILED\n{exc}", file=sys.stderr, flush=True)
            done = seed - FIRST_SEED + 1
            if done % 10 == 0 or done == n:  # a long run says where it is
                print(f"  replay: {done}/{n} sequences, {len(failures)} failed, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        engine.unload()
        fresh.unload()
    held = n - len(failures)
    return [Metric(NAME, TITLE, "sequences", goal, [float(held)], details={
        "sequences": n, "operations_each": QUICK_LENGTH if quick else LENGTH,
        "seeds": [FIRST_SEED, FIRST_SEED + n - 1], "replies": driver.replies,
        "situations": dict(sorted(driver.seen.items())),
        "largest_logprob_difference": driver.largest_difference,
        "failures": failures[:5], "seconds": round(time.perf_counter() - started, 1)})]
