"""The rule, as a property: seeded random sequences of chats, switches, overflows,
Stops, errors, reloads, regenerations, edits and API requests on the real bundled
model, each greedy reply equal to a fresh engine's (tests/support/engine_replay.py).
A short sample runs here; ``bench/run.py --only replay`` runs 200 sequences."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from engine_replay import N_CTX, SYSTEM, ReplayDriver, Reply, _observed, _tokens

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.engine import GenerationRequest, LlamaEngine, LoadOptions

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


def test_a_fresh_engine_decoding_a_reply_alike_gives_the_same_numbers(
        driver: ReplayDriver) -> None:
    """The driver's answer to a log probability beyond the tolerance: the cache holds a
    reply's tokens, which llama.cpp decoded one at a time; a fresh engine decoding the
    same tokens in the same shapes must give the very same log probabilities, and a
    reply whose numbers differ at all is told apart."""
    engine, shapes = driver.engine, driver.shapes
    shapes.watch()
    params = SamplingParams(temperature=0.0, max_tokens=6, n_ctx=N_CTX, seed=1)
    question = Message(id=1, conversation_id=0, parent_id=None, role=Role.USER,
                       content="Tell me about bread.", created_at=0.0)
    first = GenerationRequest((question,), SYSTEM, params, "alike")
    answer = engine.generate(first, lambda _t: None, threading.Event())
    assert (answer.stats.completion_tokens or 0) >= 2, answer.stats  # some were decoded
    history = (question,
               replace(question, id=2, parent_id=1, role=Role.ASSISTANT, content=answer.text),
               replace(question, id=3, parent_id=2, content="And about rivers?"))
    observed, seen = _observed(GenerationRequest(history, SYSTEM, params, "alike"))
    result = engine.generate(observed, lambda _t: None, threading.Event())
    assert 0 < engine.last_prompt_evaluated < len(engine.prompt_tokens(observed))  # reused

    prompt = engine.prompt_tokens(observed)
    shape = shapes.shape(prompt)
    read_first = len(engine.prompt_tokens(first))
    assert not any(shape[:read_first])  # the first prompt was read in one batch
    assert any(shape[read_first:])  # the reply's tokens, decoded one at a time
    mine = Reply(_tokens(seen), result.stats.finish_reason, engine.last_prompt_evaluated, 0)
    assert shapes.differs(driver.fresh.engine, prompt, mine) is None
    mine.tokens[0] = replace(mine.tokens[0], logprob=mine.tokens[0].logprob + 0.001)
    assert "log probability" in (shapes.differs(driver.fresh.engine, prompt, mine) or "")
