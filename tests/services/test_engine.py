"""Long conversations on the real bundled model with a small context: every turn is
answered, the context holds exactly a fresh render of the stored messages from the
memory start, and turns that keep the start re-read only what is new."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from llama2_template import LLAMA2_OFFICIAL

from llamadesk.core.chat_format import ChatTemplate
from llamadesk.core.conversation import FinishReason, Role, SamplingParams
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat_session import ChatSession
from llamadesk.services.engine import GenerationRequest, GenerationResult, LlamaEngine, LoadOptions

N_CTX = 256  # the smallest the app allows: ten contexts of chat in a few dozen turns
PARAMS = SamplingParams(temperature=0.7, max_tokens=8, n_ctx=N_CTX, seed=5)
# Generous for a shared machine; the benchmark measures the speed.
LONG = pytest.mark.timeout(900)
TOPICS = ["rivers", "mountains", "bread", "lighthouses", "winter", "trains", "bees",
          "libraries", "the sea", "clocks", "gardens", "bridges"]


def question(i: int) -> str:
    topic = TOPICS[i % len(TOPICS)]
    return (f"Question {i}: tell me something new about {topic}, about the people who care "
            f"for {topic} in small villages, and about how {topic} change from one season "
            f"to the next, in two or three short sentences please.")


@pytest.fixture
def engine(bundled_model_path: Path) -> Iterator[LlamaEngine]:
    e = LlamaEngine(kv_cache_bytes=64 * 1024 * 1024)
    e.load(bundled_model_path, LoadOptions(n_ctx=N_CTX, n_threads=1), model_id="bundled")
    yield e
    e.unload()


@dataclass
class Turn:
    request: GenerationRequest
    result: GenerationResult
    prompt: list[int]
    evaluated: int
    shifted: int  # tokens kept by moving them down in the context, not read again


@dataclass
class Chat:
    """A conversation driven as the app drives it: the store and ChatSession around the
    engine, the memory start kept between turns."""

    engine: LlamaEngine
    store: ConversationStore
    conversation_id: int
    turns: list[Turn] = field(default_factory=list)

    def ask(self, text: str, *, answer: bool = True) -> Turn | None:
        session = ChatSession(self.store)
        asked = session.add_question(self.conversation_id, text).message
        if not answer:  # a reply that failed or was stopped before its first word
            return None
        conversation = self.store.get_conversation(self.conversation_id)
        assert conversation is not None
        request = session.request(conversation, on_context=session.note_context)
        result = self.engine.generate(request, lambda _text: None, threading.Event())
        session.store_reply(self.conversation_id, asked.id, result)
        turn = Turn(request, result, self.engine.prompt_tokens(request),
                    self.engine.last_prompt_evaluated, self.engine.context.last_shifted)
        self.turns.append(turn)
        return turn


def new_chat(engine: LlamaEngine, store: ConversationStore) -> Chat:
    conversation = store.create_conversation(system_prompt="You are a friendly guide.",
                                             params=PARAMS)
    return Chat(engine, store, conversation.id)


def assert_context_is_a_fresh_render(engine: LlamaEngine, turn: Turn) -> None:
    """The context holds the prompt exactly as the stored messages from the memory
    start render today, token for token, followed by the reply."""
    held = engine.context_tokens()
    assert held[:len(turn.prompt)] == turn.prompt
    assert len(held) >= len(turn.prompt)


def conversation_tokens(engine: LlamaEngine, store: ConversationStore, cid: int) -> int:
    return sum(engine.count_tokens(m.content) for m in store.messages(cid))


def check_long_chat(engine: LlamaEngine, store: ConversationStore, turns: int) -> Chat:
    chat = new_chat(engine, store)
    for i in range(turns):
        previous = chat.turns[-1] if chat.turns else None
        turn = chat.ask(question(i))
        assert turn is not None
        stats = turn.result.stats
        assert stats.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
        assert stats.prompt_tokens is not None and stats.prompt_tokens <= N_CTX
        assert_context_is_a_fresh_render(engine, turn)
        context = turn.result.context
        assert context is not None
        if previous is not None and not context.moved:
            # The same memory start: only what is new since the last prompt is read.
            assert turn.evaluated <= len(turn.prompt) - len(previous.prompt) + 4, i
        if context.moved and context.memory_start_id != turn.request.history[-1].id:
            # The start moved, keeping older messages: they were shifted down in the
            # context, not read again.
            assert turn.shifted > 0, i
            assert turn.evaluated <= len(turn.prompt) - turn.shifted, i
    return chat


@LONG
def test_chatml_a_chat_ten_times_the_context_answers_every_turn(
        engine: LlamaEngine, store: ConversationStore) -> None:
    assert engine.info is not None and engine.info.template_name == "model's own"
    chat = check_long_chat(engine, store, 52)
    cid = chat.conversation_id
    assert conversation_tokens(engine, store, cid) >= 10 * N_CTX
    moves = [t for t in chat.turns if t.result.context and t.result.context.moved]
    assert len(moves) >= 5, "the history overflowed several times"
    assert sum(1 for t in chat.turns if t.result.text) >= len(chat.turns) * 0.8
    # The memory start is stored where the last move put it, and the marker follows.
    assert store.memory_start(cid) == moves[-1].result.context.memory_start_id  # type: ignore[union-attr]
    first = store.get_message(store.memory_start(cid) or 0)
    assert first is not None and first.role == Role.USER


@LONG
def test_a_moved_memory_start_shifts_the_kept_messages_instead_of_reading_them(
        bundled_model_path: Path, store: ConversationStore) -> None:
    """With room to keep older messages when the start moves (n_ctx 512, short
    questions), those turns read only the new question: the kept messages' tokens are
    moved down in the KV cache, and it still holds exactly a fresh render."""
    engine = LlamaEngine(kv_cache_bytes=64 * 1024 * 1024)
    engine.load(bundled_model_path, LoadOptions(n_ctx=512, n_threads=1), model_id="b")
    try:
        chat = new_chat(engine, store)
        params = SamplingParams(temperature=0.7, max_tokens=16, n_ctx=512, seed=5)
        store.update_conversation(chat.conversation_id, params=params)
        for i in range(40):
            turn = chat.ask(f"Question {i}: one fact about {TOPICS[i % len(TOPICS)]}?")
            assert turn is not None
            assert_context_is_a_fresh_render(engine, turn)
        shifted = [t for t in chat.turns if t.shifted]
        assert len(shifted) >= 2, "the start moved, keeping messages, more than once"
        for turn in shifted:
            assert turn.result.context is not None and turn.result.context.moved
            assert turn.evaluated <= len(turn.prompt) - turn.shifted
    finally:
        engine.unload()


@LONG
def test_llama2_format_with_questions_in_a_row_and_overflows(
        engine: LlamaEngine, store: ConversationStore) -> None:
    """Meta's strict Llama 2 template (it merges the system prompt into the first kept
    question, so a shift keeps only the tokens that still match), with a reply that
    never came in the middle."""
    engine.set_template(ChatTemplate.compile(LLAMA2_OFFICIAL, "model's own"))
    chat = new_chat(engine, store)
    for i in range(3):
        chat.ask(question(i))
    chat.ask("This one was stopped before its first word.", answer=False)
    for i in range(3, 24):
        previous = chat.turns[-1]
        turn = chat.ask(question(i))
        assert turn is not None
        assert "[INST]" in engine.plan(turn.request).text
        assert_context_is_a_fresh_render(engine, turn)
        context = turn.result.context
        assert context is not None
        if not context.moved:
            assert turn.evaluated <= len(turn.prompt) - len(previous.prompt) + 4, i
        if i == 3:  # the branch has two questions in a row, and was answered
            roles = [m.role for m in store.messages(chat.conversation_id)]
            assert roles[-4:] == [Role.ASSISTANT, Role.USER, Role.USER, Role.ASSISTANT]
    assert any(t.result.context and t.result.context.moved for t in chat.turns)
    assert conversation_tokens(engine, store, chat.conversation_id) >= 4 * N_CTX


@LONG
def test_switching_chats_and_back_after_an_overflow_restores_the_context(
        bundled_model_path: Path, store: ConversationStore) -> None:
    # Room for about one full context's state (~18 KB a token here), not every chat's.
    engine = LlamaEngine(kv_cache_bytes=6 * 1024 * 1024)
    engine.load(bundled_model_path, LoadOptions(n_ctx=N_CTX, n_threads=1), model_id="b")
    try:
        a = new_chat(engine, store)
        i = 0
        while not any(t.result.context and t.result.context.moved for t in a.turns):
            a.ask(question(i))
            i += 1
        a.ask(question(i))
        b = new_chat(engine, store)
        b.ask(question(100))
        b.ask(question(101))
        assert engine.kv_cache.size_bytes <= engine.kv_cache.capacity_bytes
        back = a.ask(question(i + 1))
        assert back is not None
        assert_context_is_a_fresh_render(engine, back)
        # A's state came back from RAM: only the new turn was read, not its history.
        assert back.result.context is not None and not back.result.context.moved
        assert back.evaluated <= len(back.prompt) - len(a.turns[-2].prompt) + 4
        c = new_chat(engine, store)
        c.ask(question(200))
        b.ask(question(102))  # whether b's state was kept or evicted, the context is right
        assert_context_is_a_fresh_render(engine, b.turns[-1])
        assert engine.kv_cache.size_bytes <= engine.kv_cache.capacity_bytes
    finally:
        engine.unload()
