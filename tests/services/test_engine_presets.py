"""A preset applied to a chat's settings shapes the reply the real engine writes: the
same seed gives the same text, another seed other text, and temperature 0 ignores the
seed. The bundled model, through real llama.cpp."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from llamadesk.core.conversation import Conversation, Role, SamplingParams
from llamadesk.core.presets import Preset, PresetBook
from llamadesk.core.store import ConversationStore
from llamadesk.services.engine import GenerationRequest, LlamaEngine, LoadOptions

QUESTION = "Write two sentences about a lighthouse at night."


@pytest.fixture(scope="module")
def engine(bundled_model_path: Path) -> LlamaEngine:
    llama = LlamaEngine()
    llama.load(bundled_model_path, LoadOptions(n_ctx=1024, n_threads=1))
    yield llama
    llama.unload()


def reply_with(engine: LlamaEngine, store: ConversationStore, preset: Preset) -> str:
    """Start a chat, apply the preset to its settings as the window does, ask, answer."""
    chat = store.create_conversation()
    store.update_conversation(chat.id, system_prompt=preset.system_prompt,
                              params=preset.applied_to(chat.params))
    store.add_message(chat.id, Role.USER, QUESTION)
    conversation = store.get_conversation(chat.id)
    assert isinstance(conversation, Conversation)
    assert conversation.params.seed == preset.params.seed
    request = GenerationRequest(tuple(store.messages(chat.id)), conversation.system_prompt,
                                conversation.params, str(chat.id))
    result = engine.generate(request, lambda _text: None, threading.Event())
    assert result.text.strip(), "the model answered"
    return result.text


def test_a_presets_seed_and_temperature_decide_the_reply(engine: LlamaEngine,
                                                         tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    book = PresetBook(tmp_path / "presets.json")
    sampled = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0,
                             repeat_penalty=1.0, max_tokens=32, seed=4242)
    book.save("Seeded", "You are a helpful assistant.", sampled)
    book.save("Other seed", "You are a helpful assistant.", replace(sampled, seed=7))
    book.save("Greedy 1", "You are a helpful assistant.",
              replace(sampled, temperature=0.0, seed=1))
    book.save("Greedy 2", "You are a helpful assistant.",
              replace(sampled, temperature=0.0, seed=2))

    def preset(name: str) -> Preset:
        found = PresetBook(book.path).get(name)  # as stored in the config folder
        assert found is not None
        return found

    first = reply_with(engine, store, preset("Seeded"))
    second = reply_with(engine, store, preset("Seeded"))
    assert first == second, "the same seed writes the same reply"
    assert reply_with(engine, store, preset("Other seed")) != first, \
        "another seed writes another reply"
    assert reply_with(engine, store, preset("Greedy 1")) == \
        reply_with(engine, store, preset("Greedy 2")), "temperature 0 ignores the seed"
    store.close()
