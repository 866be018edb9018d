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


def _load(path: Path, first_context: int) -> LlamaEngine:
    engine = LlamaEngine(32 * 1024 * 1024)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_module, "FIRST_CONTEXT", first_context)
        engine.load(path, OPTIONS, model_id="b")
    return engine


@pytest.fixture(scope="module")
def driver(bundled_model_path: Path) -> Iterator[ReplayDriver]:
    fresh = _load(bundled_model_path, CEILING)  # full size from the start: never grows
    mine = _load(bundled_model_path, 256)  # a small first context: grows in few turns
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kv_context, "FIRST_CONTEXT", 256)
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
        assert sizes[-1] >= len(engine.context_tokens()) > prompt_len
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


@LONG
def test_a_reply_that_reaches_the_end_of_the_context_grows_it_and_goes_on(
        driver: ReplayDriver, bundled_model_path: Path) -> None:
    """The prompt fits the first context, the reply does not: the context grows between
    two tokens and the reply goes on exactly as a full-size engine's."""
    engine = _load(bundled_model_path, 256)
    try:
        story = SamplingParams(temperature=0.0, max_tokens=120, n_ctx=CEILING, seed=1)
        ask = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                      content="Tell me a long story about a lighthouse keeper and her cat.",
                      created_at=0.0)
        request = GenerationRequest((ask,), "You are a patient storyteller. " * 22, story,
                                    "story")
        prompt_len = len(engine.prompt_tokens(request))
        assert prompt_len < 256 == _size(engine)
        result = ReplayDriver(engine, driver.fresh.engine, bundled_model_path,
                              OPTIONS)._check(request, None, None, random.Random(0))
        assert prompt_len + result.stats.completion_tokens > 256  # it grew mid-reply
        assert _size(engine) == 512
        assert len(engine.context_tokens()) >= prompt_len + result.stats.completion_tokens - 1
        assert result.stats.prompt_tokens_per_s is not None  # counted before it grew
    finally:
        engine.unload()
