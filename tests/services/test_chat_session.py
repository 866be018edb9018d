"""ChatSession, the store side of a turn shared by the window and the CLI, on a real
SQLite file (the engine's results are built by hand: no model is needed here)."""

from __future__ import annotations

from llamadesk.core.conversation import FinishReason, MessageStats, Role, SamplingParams
from llamadesk.core.prompt import ContextUse
from llamadesk.core.store import DEFAULT_TITLE, ConversationStore
from llamadesk.services.chat_session import ChatSession, title_from
from llamadesk.services.engine import GenerationResult


def result(text: str, finish: FinishReason, context: ContextUse | None = None
           ) -> GenerationResult:
    return GenerationResult(text=text, model_id="m", stats=MessageStats(
        completion_tokens=len(text.split()), finish_reason=finish), context=context)


def test_the_first_question_names_a_new_chat_once(store: ConversationStore) -> None:
    session = ChatSession(store)
    c = store.create_conversation().id
    first = session.add_question(c, "What is the tallest mountain in the Alps, please?")
    assert first.renamed is not None
    assert first.renamed.title == title_from(first.message.content) != DEFAULT_TITLE
    assert session.add_question(c, "And the second?").renamed is None


def test_a_chat_the_user_named_keeps_its_name(store: ConversationStore) -> None:
    session = ChatSession(store)
    c = store.create_conversation("Alps trip").id
    assert session.add_question(c, "Hello").renamed is None
    conversation = store.get_conversation(c)
    assert conversation is not None and conversation.title == "Alps trip"


def test_the_request_is_the_branch_from_its_memory_start(store: ConversationStore) -> None:
    session = ChatSession(store)
    conversation = store.create_conversation(system_prompt="Be brief.",
                                             params=SamplingParams(max_tokens=9))
    q = session.add_question(conversation.id, "one").message
    store.add_message(conversation.id, Role.ASSISTANT, "two")
    q2 = session.add_question(conversation.id, "three").message
    request = session.request(conversation)
    assert [m.id for m in request.history] == [q.id, q.id + 1, q2.id]
    assert request.memory_start_id is None
    assert request.system_prompt == "Be brief." and request.params.max_tokens == 9
    assert request.conversation_key == str(conversation.id)
    # A start the engine moved is kept, and the next request carries it.
    session.note_context(ContextUse(q2.id, 2, 100, 256, moved=True))
    assert session.request(conversation).memory_start_id == q2.id
    session.note_context(ContextUse(q.id, 0, 100, 256, moved=False))  # not a move
    assert store.memory_start(conversation.id) == q2.id


def test_a_reply_is_stored_with_its_statistics(store: ConversationStore) -> None:
    session = ChatSession(store)
    c = store.create_conversation().id
    q = session.add_question(c, "Hi").message
    stored = session.store_reply(c, q.id, result("Hello there.", FinishReason.STOP))
    assert stored is not None and stored.parent_id == q.id and stored.role == Role.ASSISTANT
    assert stored.stats.finish_reason == FinishReason.STOP and stored.model_id == "m"


def test_a_reply_stopped_before_its_first_word_keeps_nothing(store: ConversationStore) -> None:
    session = ChatSession(store)
    c = store.create_conversation().id
    q = session.add_question(c, "Hi").message
    assert session.store_reply(c, q.id, result("", FinishReason.STOPPED)) is None
    assert [m.id for m in store.messages(c)] == [q.id]
    partial = session.store_reply(c, q.id, result("Hel", FinishReason.STOPPED))
    assert partial is not None and partial.stats.finish_reason == FinishReason.STOPPED


def test_a_reply_to_a_deleted_chat_keeps_nothing(store: ConversationStore) -> None:
    session = ChatSession(store)
    c = store.create_conversation().id
    q = session.add_question(c, "Hi").message
    store.delete_conversation(c)
    moved = ContextUse(q.id, 1, 10, 256, moved=True)
    assert session.store_reply(c, q.id, result("Late.", FinishReason.STOP, moved)) is None
    assert store.get_conversation(c) is None


def test_the_memory_start_is_written_by_the_plan_not_again_by_the_reply(
        store: ConversationStore) -> None:
    """One writer per turn: ``note_context`` with the plan the engine reports; storing
    the reply that carries the same plan leaves the memory start alone."""
    session = ChatSession(store)
    c = store.create_conversation().id
    q = session.add_question(c, "one").message
    moved = ContextUse(q.id, 1, 100, 256, moved=True)
    assert session.store_reply(c, q.id, result("two", FinishReason.STOP, moved)) is not None
    assert store.memory_start(c) is None, "the reply wrote the memory start"
    q2 = session.add_question(c, "three").message
    session.note_context(ContextUse(q2.id, 2, 100, 256, moved=True))
    assert store.memory_start(c) == q2.id
