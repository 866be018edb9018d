"""The context is created small and grows as a chat needs more; what it held carries
over, and every reply still equals a fresh engine's (one loaded at the full context
length from the start). The bundled model, through real llama.cpp."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.engine_replay import ReplayDriver

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services import engine as engine_module
from llamadesk.services import kv_context
from llamadesk.services import llama_internals as internals
from llamadesk.services.engine import GenerationRequest, LlamaEngine, LoadOptions
from llamadesk.services.kv_context import context_size_for

CEILING = 1024
OPTIONS = LoadOptions(n_ctx=CEILING, n_threads=2, n_batch=256)
GREEDY = SamplingParams(temperature=0.0, max_tokens=8, n_ctx=CEILING, seed=1)
# Generous for a shared machine: a fresh engine reads each prompt whole.
LONG = pytest.mark.timeout(900)


def test_sizes_double_from_the_first_context_up_to_the_ceiling() -> None:
    first = kv_context.FIRST_CONTEXT
    assert context_size_for(100, first, 4096) == first  # fits: unchanged
    assert context_size_for(first + 1, first, 4096) == 2 * first
    assert context_size_for(3 * first, first, 4096) == 4 * first
    assert context_size_for(10 * first, first, 4096) == 4096  # never past the ceiling
    assert context_size_for(5000, 4096, 4096) == 4096
    assert context_size_for(10, 2048, 4096) == 2048  # never shrinks


@pytest.fixture(scope="module")
def driver(bundled_model_path: Path) -> Iterator[ReplayDriver]:
    fresh = LlamaEngine(32 * 1024 * 1024)
    fresh.load(bundled_model_path, OPTIONS, model_id="b")
    mine = LlamaEngine(32 * 1024 * 1024)
    with pytest.MonkeyPatch.context() as mp:  # a small first context: grows in few turns
        mp.setattr(kv_context, "FIRST_CONTEXT", 256)
        mp.setattr(engine_module, "FIRST_CONTEXT", 256)
        mine.load(bundled_model_path, OPTIONS, model_id="b")
        yield ReplayDriver(mine, fresh, bundled_model_path, OPTIONS)
    mine.unload()
    fresh.unload()


def _history(turns: int, words: int) -> tuple[Message, ...]:
    rng = random.Random(turns)
    vocabulary = ["river", "bread", "lighthouse", "winter", "train", "bee", "clock", "bridge",
                  "harbour", "lantern", "meadow", "storm"]
    out = []
    for i in range(2 * turns - 1):
        text = " ".join(rng.choice(vocabulary) for _ in range(words))
        out.append(Message(id=i + 1, conversation_id=1, parent_id=i or None,
                           role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
                           content=f"Tell me about {text}." if i % 2 == 0 else text,
                           created_at=0.0))
    return tuple(out)


def _size(engine: LlamaEngine) -> int:
    assert engine._llm is not None
    return internals.context_size(engine._llm)


@LONG
def test_a_growing_chat_grows_the_context_and_replies_as_a_fresh_engine(
        driver: ReplayDriver) -> None:
    engine = driver.engine
    assert _size(engine) == 256
    history = _history(2, 10)
    driver._check(GenerationRequest(history, "You are terse.", GREEDY, "grows"), None, None,
                  random.Random(0))
    sizes = []
    for turns, words in ((3, 12), (7, 16)):
        history = history + _history(turns, words)[len(history):]
        request = GenerationRequest(history, "You are terse.", GREEDY, "grows")
        prompt_len = len(driver.fresh.engine.prompt_tokens(request))
        driver._check(request, None, None, random.Random(0))  # raises on a mismatch
        sizes.append(_size(engine))
        assert sizes[-1] >= prompt_len + GREEDY.max_tokens
        # What the smaller context held carried over: only the new turn was read.
        assert engine.last_prompt_evaluated < prompt_len
    assert sizes == sorted(sizes) and sizes[-1] > 256, sizes
    assert engine.info is not None and engine.info.n_ctx == CEILING


@LONG
def test_a_saved_chat_comes_back_after_the_context_grew(driver: ReplayDriver) -> None:
    short = GenerationRequest(_history(1, 6), "You are terse.", GREEDY, "short")
    driver._check(short, None, None, random.Random(0))
    long = GenerationRequest(_history(7, 16), "You are terse.", GREEDY, "long")
    driver._check(long, None, None, random.Random(0))
    grown = _size(driver.engine)
    assert grown > 256
    more = (Message(id=50, conversation_id=1, parent_id=1, role=Role.ASSISTANT,
                    content="Bread.", created_at=0.0),
            Message(id=51, conversation_id=1, parent_id=50, role=Role.USER,
                    content="And rivers?", created_at=0.0))
    again = GenerationRequest((*_history(1, 6), *more), "You are terse.", GREEDY, "short")
    driver._check(again, None, None, random.Random(0))
    assert _size(driver.engine) == grown  # never shrinks
