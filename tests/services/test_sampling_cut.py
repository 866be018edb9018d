"""Sampled replies cut the candidates to the best few before the repetition penalties
(llama_internals.cut_candidates_first) and come out the same token for token as with
llama-cpp-python's own chain: the bundled model through real llama.cpp."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from model_files import loaded_engine

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services import llama_internals as internals
from llamadesk.services.engine import GenerationRequest, LlamaEngine

QUESTION = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                   content="List the colours of a rainbow, again and again.", created_at=0.0)


@pytest.fixture(scope="module")
def engine(bundled_model_path: Path) -> Iterator[LlamaEngine]:
    yield from loaded_engine(bundled_model_path, n_threads=1)


def _replies(engine: LlamaEngine, cut: bool, **params: float) -> list[str]:
    llm = engine._llm
    assert llm is not None
    internals.cut_candidates_first(llm, cut)
    texts = []
    try:
        for seed in (1, 2, 3, 4):
            engine.reset_context()
            sampling = SamplingParams(max_tokens=40, n_ctx=512, seed=seed, **params)
            texts.append(engine.generate(GenerationRequest((QUESTION,), "", sampling, "k"),
                                         lambda _t: None, threading.Event()).text)
    finally:
        internals.cut_candidates_first(llm)
    return texts


@pytest.fixture(scope="module")
def uncut(engine: LlamaEngine) -> Callable[..., list[str]]:
    """The replies through llama-cpp-python's own chain, read once per set of parameters
    in this module (the same seeds from a reset context give the same replies)."""
    known: dict[tuple[tuple[str, float], ...], list[str]] = {}

    def replies(**params: float) -> list[str]:
        key = tuple(sorted(params.items()))
        if key not in known:
            known[key] = _replies(engine, False, **params)
        return list(known[key])
    return replies


@pytest.mark.parametrize("params", [
    {},  # the app's defaults: temperature 0.7, top-k 40, repeat penalty 1.1
    {"temperature": 1.2, "top_k": 5, "repeat_penalty": 3.0},  # penalised tokens drop out
])
def test_sampled_replies_are_the_same_with_the_cut(
        engine: LlamaEngine, uncut: Callable[..., list[str]],
        params: dict[str, float]) -> None:
    assert _replies(engine, True, **params) == uncut(**params)


def test_a_cut_that_ignores_the_penalties_would_change_replies(
        engine: LlamaEngine, uncut: Callable[..., list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: keeping only the top-k before strong penalties
    loses the tokens that move up when penalised ones drop."""
    strong = {"temperature": 1.2, "top_k": 5, "repeat_penalty": 3.0}
    right = uncut(**strong)
    monkeypatch.setattr(internals, "cut_size", lambda top_k, _window: top_k)
    assert _replies(engine, True, **strong) != right
