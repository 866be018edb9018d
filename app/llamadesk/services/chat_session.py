"""The store side of a chat turn, shared by the window's controller and ``llamadesk chat``.

No Qt: the controller calls it on the GUI thread, the command line directly. It stores
the user's message and names a new chat after it, builds the generation request from
the branch on screen and where the model's memory begins, stores the reply with its
statistics, and keeps the memory start when the engine moves it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llamadesk.core.branch_reader import BranchReader
from llamadesk.core.conversation import Conversation, Message, Role, SamplingParams
from llamadesk.core.documents.index import Passage
from llamadesk.core.documents.quoting import save_sources, with_passages
from llamadesk.core.prompt import ContextUse
from llamadesk.core.store import DEFAULT_TITLE, ConversationStore, StoreError
from llamadesk.core.store_kv import mark_of
from llamadesk.services.engine_types import GenerationRequest, GenerationResult

TITLE_LENGTH = 48


def title_from(text: str) -> str:
    """A short title from the first message."""
    words = " ".join(text.split())
    if len(words) <= TITLE_LENGTH:
        return words or DEFAULT_TITLE
    return words[:TITLE_LENGTH].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class StoredQuestion:
    """The user's stored message, and the conversation if storing it renamed it."""

    message: Message
    renamed: Conversation | None = None


class ChatSession:
    """Stores one side of each turn: the question before a reply, the reply after."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.branches = BranchReader(store)  # a long chat's branch is not read whole per send

    def add_question(self, conversation_id: int, text: str) -> StoredQuestion:
        """Store the user's message after the branch on screen. The first message of a
        chat that still has the default title names it."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise KeyError(f"no conversation {conversation_id}")
        message = self.store.add_message(conversation_id, Role.USER, text)
        renamed = None
        if conversation.title == DEFAULT_TITLE and message.parent_id is None:
            self.store.rename_conversation(conversation_id, title_from(text))
            renamed = self.store.get_conversation(conversation_id)
        return StoredQuestion(message, renamed)

    def request(self, conversation: Conversation, params: SamplingParams | None = None,
                on_context: Callable[[ContextUse], None] | None = None,
                passages: Sequence[Passage] = ()) -> GenerationRequest:
        """The request for a reply to the branch on screen, from where the model's
        memory begins on it; ``passages`` are quoted in the newest question (see
        core/documents/quoting.py), what the model sees, not what is stored."""
        return GenerationRequest(
            history=with_passages(self.branches.branch(conversation.id), passages),
            system_prompt=conversation.system_prompt,
            params=params or conversation.params,
            conversation_key=str(conversation.id),
            memory_start_id=self.store.memory_start(conversation.id),
            on_context=on_context,
            kv_epoch=mark_of(self.store, conversation.id),
        )

    def note_context(self, use: ContextUse | None) -> None:
        """Keep where the model's memory begins, when the engine moved it: the one
        writer of the memory start, called once per turn with the plan the engine
        reports (``on_context``: at once by the command line, relayed to the GUI thread
        by the window's controller), so the reply that follows does not write it again."""
        if use is not None and use.moved:
            self.store.set_memory_start(use.memory_start_id)

    def store_reply(self, conversation_id: int, parent_id: int, result: GenerationResult,
                    model_id: str | None = None,
                    sources: Sequence[Passage] = (),
                    checkpoint: str | None = None) -> Message | None:
        """Store a finished or stopped reply after ``parent_id``, with the passages it
        was given (``sources``), deleting its ``checkpoint`` (an app_state key) in the
        same transaction. Returns None when there is nothing to keep: stopped
        before its first word, or the chat was deleted while the reply was written
        (the checkpoint is then left to the caller).
        The memory start was kept when the engine planned the reply (``note_context``)."""
        if not result.text and result.cancelled:
            return None
        if self.store.get_conversation(conversation_id) is None:
            return None
        message = self.store.add_message(
            conversation_id, Role.ASSISTANT, result.text, parent_id=parent_id,
            model_id=result.model_id or model_id, stats=result.stats, forget_state=checkpoint)
        if sources:
            save_sources(self.store, message.id, sources)
        return message


#: ``Conversation.origin`` of a chat kept from the local API.
API_ORIGIN = "api"


def store_api_chat(store: ConversationStore, request: GenerationRequest,
                   result: GenerationResult, model_id: str) -> Conversation | None:
    """Keep one local-API chat completion as a new conversation marked as from the API:
    its system prompt and sampling, the messages it was sent, and the reply. Nothing is
    kept for a reply stopped before its first word."""
    if not result.text and result.cancelled:
        return None
    first = next((m.content for m in request.history if m.role == Role.USER), "")
    conversation = store.create_conversation(
        title_from(first), model_id=model_id, system_prompt=request.system_prompt,
        params=request.params, origin=API_ORIGIN)
    try:
        for message in request.history:
            store.add_message(conversation.id, message.role, message.content)
        store.add_message(conversation.id, Role.ASSISTANT, result.text,
                          model_id=result.model_id or model_id, stats=result.stats)
    except StoreError:
        # All of it or nothing: a half-kept chat would look like the client's own.
        with contextlib.suppress(StoreError):
            store.delete_conversation(conversation.id)
        raise
    return store.get_conversation(conversation.id)
