"""A reply is never sampled from logits another conversation left behind: after the
context is switched to a saved state (which carries no logits), a greedy reply equals
a fresh engine's for the same prompt. The bundled model, through real llama.cpp."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.constraints import ReplyConstraints, TokenLogprob
from llamadesk.services.engine import EngineError, GenerationRequest, LlamaEngine, LoadOptions

N_CTX = 512
GREEDY = SamplingParams(temperature=0.0, max_tokens=6, n_ctx=N_CTX, seed=1)


@pytest.fixture(scope="module")
def engines(bundled_model_path: Path) -> Iterator[tuple[LlamaEngine, LlamaEngine]]:
    """The engine under test and a second one answering every prompt from scratch."""
    pair = (LlamaEngine(32 * 1024 * 1024), LlamaEngine(32 * 1024 * 1024))
    for e in pair:
        e.load(bundled_model_path, LoadOptions(n_ctx=N_CTX, n_threads=1), model_id="b")
    yield pair
    for e in pair:
        e.unload()


def history(*texts: str) -> tuple[Message, ...]:
    return tuple(Message(id=i + 1, conversation_id=1, parent_id=i or None,
                         role=Role.USER if i % 2 == 0 else Role.ASSISTANT, content=text,
                         created_at=0.0) for i, text in enumerate(texts))


def reply(engine: LlamaEngine, key: str, messages: tuple[Message, ...],
          max_tokens: int) -> list[tuple[tuple[int, ...], float]]:
    """The greedy reply's tokens (as bytes) and their log probabilities."""
    seen: list[TokenLogprob] = []
    request = GenerationRequest(
        messages, "You are terse.", SamplingParams(
            **{**GREEDY.to_dict(), "max_tokens": max_tokens}), key,
        constraints=ReplyConstraints(top_logprobs=0, on_logprob=seen.append))
    engine.generate(request, lambda _t: None, threading.Event())
    return [(t.bytes, t.logprob) for t in seen]


def fresh_reply(fresh: LlamaEngine, messages: tuple[Message, ...],
                max_tokens: int) -> list[tuple[tuple[int, ...], float]]:
    fresh.reset_context()
    return reply(fresh, "fresh", messages, max_tokens)


def same(a: list[tuple[tuple[int, ...], float]], b: list[tuple[tuple[int, ...], float]]) -> bool:
    return [t for t, _ in a] == [t for t, _ in b] and all(
        abs(x - y) <= 1e-3 for (_, x), (_, y) in zip(a, b, strict=True))


def test_regenerating_a_one_token_reply_after_another_chat_matches_a_fresh_engine(
        engines: tuple[LlamaEngine, LlamaEngine]) -> None:
    engine, fresh = engines
    a = history("Name a colour.")
    b = history("Count from one to five, please, in words.")
    reply(engine, "A", a, 1)  # A's context now ends where its one token was sampled
    reply(engine, "B", b, 6)  # B's decodes leave B's logits in the context
    again = reply(engine, "A", a, 1)  # Regenerate in A: an exact prompt hit
    expected = fresh_reply(fresh, a, 1)
    assert same(again, expected), (again, expected)


def test_an_exact_hit_in_the_same_chat_matches_a_fresh_engine(
        engines: tuple[LlamaEngine, LlamaEngine]) -> None:
    engine, fresh = engines
    a = history("Name an animal.")
    first = reply(engine, "C", a, 1)
    second = reply(engine, "C", a, 3)
    assert same(first, fresh_reply(fresh, a, 1))
    assert same(second, fresh_reply(fresh, a, 3))


def test_a_grammar_that_does_not_parse_is_an_error_not_a_crash(
        engines: tuple[LlamaEngine, LlamaEngine]) -> None:
    """llama-cpp-python adds the NULL sampler llama.cpp returns for such a grammar to
    its chain, and sampling then crashes the process."""
    engine, fresh = engines
    a = history("Name a fruit.")
    request = GenerationRequest(a, "You are terse.", GREEDY, "D",
                                constraints=ReplyConstraints(grammar='root ::= "yes" | ('))
    with pytest.raises(EngineError, match="grammar"):
        engine.generate(request, lambda _t: None, threading.Event())
    assert same(reply(engine, "D", a, 2), fresh_reply(fresh, a, 2))


def test_an_empty_raw_prompt_is_continued_from_the_models_bos(
        engines: tuple[LlamaEngine, LlamaEngine]) -> None:
    """A completion of nothing, on a model that adds no BOS itself (the bundled one),
    left llama-cpp-python sampling with no token decoded (an assertion inside it); it
    starts from the model's BOS, as llama-cpp-python's own completion does, and the
    engine goes on."""
    engine, fresh = engines
    empty = GenerationRequest((), "", GREEDY, "F",
                              constraints=ReplyConstraints(raw_prompt=""))
    result = engine.generate(empty, lambda _t: None, threading.Event())
    assert result.stats.prompt_tokens == 1 and result.stats.completion_tokens > 0
    a = history("Name a fruit.")
    assert same(reply(engine, "F", a, 1), fresh_reply(fresh, a, 1))


def test_a_refused_request_leaves_the_context_as_it_was(
        engines: tuple[LlamaEngine, LlamaEngine]) -> None:
    """The grammar is checked before the context is switched to the request's chat (or
    shifted for it): a refused request must not rewrite another chat's cache."""
    engine, fresh = engines
    a = history("Name a river.")
    b = history("Name a mountain.", "Everest.", "And a lake?")
    reply(engine, "E2", b, 2)  # E2 has a saved state that a switch would restore
    reply(engine, "E1", a, 2)
    held = engine.context_tokens()
    other = GenerationRequest(b, "You are terse.", GREEDY, "E2",
                              constraints=ReplyConstraints(grammar="root ::= ("))
    with pytest.raises(EngineError, match="grammar"):
        engine.generate(other, lambda _t: None, threading.Event())
    assert engine.context_tokens() == held
    assert same(reply(engine, "E1", a, 2), fresh_reply(fresh, a, 2))
