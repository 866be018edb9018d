"""The rule, as a property: seeded random sequences of chats, switches, overflows,
Stops, errors, reloads, regenerations, edits and API requests on the real bundled
model, each greedy reply equal to a fresh engine's (tests/support/engine_replay.py).
A short sample runs here; ``bench/run.py --only replay`` runs 200 sequences."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_replay import N_CTX, ReplayDriver

from llamadesk.services.engine import LlamaEngine, LoadOptions

# One thread: the machines the suite runs on are shared, and spinning threads that
# wait for a busy core cost more than they bring.
OPTIONS = LoadOptions(n_ctx=N_CTX, n_threads=1)
#: The short sample. Seed 2 fails when the logits-stale rule is taken out (it regenerates
#: a one-token reply after another chat); 8 shifts; 10 fails a request and Stops while
#: the template renders. The bench runs 200 other seeds.
SEEDS = (2, 8, 10)
LENGTH = 10


@pytest.fixture(scope="module")
def driver(bundled_model_path: Path) -> Iterator[ReplayDriver]:
    engine, fresh = LlamaEngine(32 * 1024 * 1024), LlamaEngine(32 * 1024 * 1024)
    engine.load(bundled_model_path, OPTIONS, model_id="bundled")
    fresh.load(bundled_model_path, OPTIONS, model_id="bundled")
    yield ReplayDriver(engine, fresh, bundled_model_path, OPTIONS)
    engine.unload()
    fresh.unload()


@pytest.mark.parametrize("seed", SEEDS)
def test_every_greedy_reply_equals_a_fresh_engines(driver: ReplayDriver, seed: int) -> None:
    driver.run(seed, LENGTH)  # raises with the seed and the operations on a mismatch


def test_the_sample_reached_the_situations_the_rule_is_about(driver: ReplayDriver) -> None:
    """Runs after the sequences above (same module): they switched with exact and
    prefix hits, shifted, stopped at every stage, failed, reloaded and served the API."""
    for seed in SEEDS:  # standalone (-k): run the sample first
        if driver.replies == 0:
            driver.run(seed, LENGTH)
    seen = driver.seen
    print(dict(seen))
    for situation in ("exact hit after a switch", "prefix hit after a switch", "no hit",
                      "shift", "after a shift (stated exception)",
                      "stopped while the template rendered", "stopped mid-prompt",
                      "stopped mid-reply", "engine error", "reload", "regenerate", "edit",
                      "api probe", "api json", "api logprobs"):
        assert seen[situation] > 0, (situation, dict(seen))
