"""The chat controller: stores messages and drives the inference service.

Lives on the GUI thread. The user's message is committed before generation starts
(shown at once; synced to the disk on the writer thread, and announced as stored once
it is: core/store_sync.py); the reply is committed when it ends (also when stopped, with
the partial text marked as stopped), and synced and announced the same way. Errors never
become chat messages: they travel as ``reply_failed``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from llamadesk.core.conversation import (
    Conversation,
    FinishReason,
    Message,
    MessageStats,
    Role,
)
from llamadesk.core.documents.index import Passage
from llamadesk.core.prompt import ContextUse
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.core.store_sync import deferred_sync
from llamadesk.services.chat_documents import ChatDocuments
from llamadesk.services.chat_session import TITLE_LENGTH, ChatSession, title_from
from llamadesk.services.doc_indexer import DocumentIndexer
from llamadesk.services.engine_types import GenerationResult
from llamadesk.services.inference_api import InferenceApi
from llamadesk.services.jobs import JobEnd, ModelSpec
from llamadesk.services.query_embedder import QueryEmbedder, resolver_locate
from llamadesk.services.reply_checkpoints import ReplyCheckpoints
from llamadesk.services.resolver import ModelResolver

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_INTERVAL_S", "DRAFT_PREFIX", "TITLE_LENGTH", "ChatController",
           "title_from"]


#: How often the reply being written is saved, so a crash keeps most of it (seconds).
CHECKPOINT_INTERVAL_S = 2.0
DRAFT_PREFIX = "draft:"


@dataclass
class _Pending:
    conversation_id: int
    model_id: str
    parent_id: int
    text: str = ""
    saved_at: float = 0.0
    #: The document passages quoted in the prompt, kept with the reply.
    sources: tuple[Passage, ...] = ()


class ChatController(QObject):
    """Sends messages and stores replies.

    Signals:
        question_added(Message): the user's message was committed: show it. It is
            announced by ``message_added`` once it is on the disk.
        message_added(Message): a message was stored and synced to the disk (the user's,
            or a finished reply); a question is always announced before its reply.
        sync_failed(int, str): the disk did not confirm this conversation's question or
            reply was written (it is in the chat; a power cut could lose it): the
            sentence says so.
        reply_started(int): a reply to this conversation began.
        reply_text(int, str): more text of the reply to this conversation.
        reply_finished(int, Message | None): the reply ended: the message committed
            (``message_added`` follows once it is synced), or None when nothing was
            kept (stopped before its first word, or the chat was deleted meanwhile).
            Every reply ends with exactly one of this or ``reply_failed``.
        reply_failed(int, str): the reply failed; nothing was stored for it.
        conversation_changed(Conversation): title or settings changed.
        context_changed(int, int | None, int, int): for this conversation, the first
            message the model still sees (None: all of them), the tokens in use and the
            context length; when a reply starts and ends, and on ``announce_context``.
    """

    question_added = Signal(object)
    message_added = Signal(object)
    sync_failed = Signal(int, str)
    reply_started = Signal(int)
    reply_text = Signal(int, str)
    reply_finished = Signal(int, object)
    reply_failed = Signal(int, str)
    conversation_changed = Signal(object)
    context_changed = Signal(int, object, int, int)
    # Emitted on the inference thread when a prompt is planned; delivered queued.
    _context_planned = Signal(int, object)
    # Emitted on the writer thread when a message's sync ended (None, or why it failed).
    _message_synced = Signal(int, object)

    def __init__(self, store: ConversationStore, inference: InferenceApi,
                 resolve_model: ModelResolver, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.inference = inference
        self.resolve_model = resolve_model
        self.session = ChatSession(store)
        self.documents = ChatDocuments(store)
        #: Indexes collections on its own thread; waits while a reply is generated.
        locate = resolver_locate(resolve_model)
        self.indexer = DocumentIndexer(store.another_connection, locate, parent=self)
        #: Embeds a question for collections indexed by meaning, on its own thread.
        self.query_embedder = QueryEmbedder(locate, parent=self)
        self.query_embedder.query_embedded.connect(self._on_query_embedded)
        #: Commits the reply checkpoints on its own thread (an fsync each); also reads a
        #: chat's branch ahead of its first send (``prepare_send``).
        self.checkpoints = ReplyCheckpoints(store.another_connection)
        #: Replies waiting for their question's vector: token -> what to answer.
        self._awaiting: dict[int, tuple[Conversation, ModelSpec, Message]] = {}
        self._tokens = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._context: dict[int, ContextUse] = {}
        self._context_planned.connect(self._on_context_planned)
        #: Messages committed whose sync is under way, by id, to announce once synced.
        self._unsynced: dict[int, Message] = {}
        self._message_synced.connect(self._on_message_synced)
        inference.generation_started.connect(self._on_started)
        inference.token_batch_ready.connect(self._on_text)
        inference.generation_ended.connect(self._on_ended)

    @property
    def busy(self) -> bool:
        """Whether any reply is queued or being written."""
        return bool(self._pending or self._awaiting)

    def generating_in(self, conversation_id: int) -> bool:
        """Whether a reply to this conversation is queued or running."""
        return (any(p.conversation_id == conversation_id for p in self._pending.values())
                or any(c.id == conversation_id for c, _s, _l in self._awaiting.values()))

    def reply_model(self, conversation_id: int) -> str | None:
        """The model writing this conversation's reply (None: no reply under way)."""
        return next((p.model_id for p in self._pending.values()
                     if p.conversation_id == conversation_id), None)

    def live_text(self, conversation_id: int) -> str:
        """The reply being written in this conversation so far ("" if none)."""
        return next((p.text for p in self._pending.values()
                     if p.conversation_id == conversation_id), "")

    def prepare_send(self, conversation_id: int) -> None:
        """Do on the writer thread what a chat's first send would do on this one: read
        its whole branch, so that the send reads only the branch's end (1,000 messages:
        ~5-10 ms of CPU here, up to 25 ms and more of wall on a busy machine). Not while a
        reply is written: the work would take the interpreter from the reply's thread.
        (The file parsers a reply's passages could need are imported only when a file is
        attached: a chat without files never holds them in memory.)"""
        if self.busy:
            return
        branches = self.session.branches
        self.checkpoints.call(
            lambda store: branches.offer(conversation_id, store.messages(conversation_id)))

    def send(self, conversation_id: int, text: str) -> Message | None:
        """Store the user's message and ask for a reply. Returns the stored message, or
        None when ``text`` is blank or the conversation is already being answered."""
        text = text.strip()
        if not text or self.generating_in(conversation_id):
            return None
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            raise KeyError(f"no conversation {conversation_id}")
        try:
            spec = self.resolve_model(conversation.model_id, conversation.params.n_ctx)
        except LookupError as exc:
            self.reply_failed.emit(conversation_id, str(exc))
            return None
        try:
            # Committed without waiting for the disk (an fsync, 1-10 ms, in the frame
            # that shows the question): the writer thread syncs it, then it is announced.
            with deferred_sync(self.store):
                stored = self.session.add_question(conversation_id, text)
        except StoreError as exc:  # a full disk or a locked file: the text stays typed
            self.reply_failed.emit(conversation_id, str(exc))
            return None
        message = stored.message
        if stored.renamed is not None:
            self.conversation_changed.emit(stored.renamed)
        self.question_added.emit(message)
        self._sync_then_announce(message)
        self._request_reply(conversation, spec, message)
        return message

    def _sync_then_announce(self, message: Message) -> None:
        """``message`` was committed without waiting for the disk: the writer thread
        syncs it, then it is announced (``_on_message_synced``)."""
        self._unsynced[message.id] = message
        self.checkpoints.sync(self.store.path,
                              lambda reason: self._message_synced.emit(message.id, reason))

    @Slot(int, object)
    def _on_message_synced(self, message_id: int, reason: str | None) -> None:
        if self.checkpoints.closed:  # the window is closing: its store may be closed
            return
        if reason is not None:  # kept: a later synced commit of this store announces it
            message = self._unsynced.get(message_id)
            if message is not None:
                self.sync_failed.emit(message.conversation_id, reason)
            return
        # The log is on the disk up to this message: those committed before it are too
        # (a question whose own sync failed comes before its reply), in their order.
        self._announce_synced(up_to=message_id)

    def _announce_synced(self, up_to: int | None = None) -> None:
        """The log is on the disk up to message ``up_to`` (None: up to a commit with its
        own sync that just returned): announce it and those committed before it, in
        their order (nothing when a later sync announced it first)."""
        while self._unsynced and (up_to is None or up_to in self._unsynced):
            self.message_added.emit(self._unsynced.pop(next(iter(self._unsynced))))

    def regenerate(self, reply_id: int, model_id: str | None = None) -> bool:
        """Write a new version of a reply (with ``model_id``, else the chat's model);
        the old one stays as another version. Returns False when that chat is busy or
        the reply is unknown."""
        reply = self.store.get_message(reply_id)
        if reply is None or reply.role != Role.ASSISTANT or reply.parent_id is None:
            return False
        question = self.store.get_message(reply.parent_id)
        if question is None or self.generating_in(reply.conversation_id):
            return False
        return self._answer_from(question, model_id)

    def edit(self, message_id: int, text: str) -> Message | None:
        """Store an edited copy of a user message as a new version (the original and
        everything after it stay), and ask for a reply to it."""
        original = self.store.get_message(message_id)
        text = text.strip()
        if (original is None or original.role != Role.USER or not text
                or self.generating_in(original.conversation_id)):
            return None
        edited = self.store.add_message(original.conversation_id, Role.USER, text,
                                        parent_id=original.parent_id,
                                        as_root=original.parent_id is None)
        self.question_added.emit(edited)
        self._announce_synced()
        self.message_added.emit(edited)
        self._answer_from(edited)  # a failure is reported by reply_failed; the edit stays
        return edited

    def _answer_from(self, question: Message, model_id: str | None = None) -> bool:
        conversation = self.store.get_conversation(question.conversation_id)
        if conversation is None:
            return False
        try:
            spec = self.resolve_model(model_id or conversation.model_id,
                                      conversation.params.n_ctx)
        except LookupError as exc:
            self.reply_failed.emit(conversation.id, str(exc))
            return False
        # The branch on screen ends at the question while its new answer is written.
        self.store.set_leaf(conversation.id, question.id)
        self._request_reply(conversation, spec, question)
        return True

    def _request_reply(self, conversation: Conversation, spec: ModelSpec,
                       leaf: Message) -> None:
        self.indexer.hold()  # before the job starts: no file begins beside the reply
        model = self.documents.embedding_model(conversation.id)
        if model is None:
            self._ask(conversation, spec, leaf)
            return
        # Collections indexed by meaning: the question's vector first, off this thread.
        token = next(self._tokens)
        self._awaiting[token] = (conversation, spec, leaf)
        self.query_embedder.request(token, model, leaf.content)

    @Slot(int, object)
    def _on_query_embedded(self, token: int, vector: list[float] | None) -> None:
        waiting = self._awaiting.pop(token, None)
        if waiting is not None:  # None: stopped meanwhile
            self._ask(*waiting, query_vector=vector)

    def _ask(self, conversation: Conversation, spec: ModelSpec, leaf: Message,
             query_vector: list[float] | None = None) -> None:
        cid = conversation.id
        passages = self.documents.passages(cid, leaf.content, spec.options.n_ctx,
                                           conversation.params.max_tokens, query_vector)
        request = self.session.request(
            conversation, on_context=lambda use: self._context_planned.emit(cid, use),
            passages=passages)
        job_id = self.inference.generate(request, spec)
        self._pending[job_id] = _Pending(cid, spec.model_id, leaf.id,
                                         sources=tuple(passages))

    def _take(self, job_id: int) -> _Pending | None:
        """Forget a job; indexing goes on once no reply is left."""
        pending = self._pending.pop(job_id, None)
        if not self._pending and not self._awaiting:
            self.indexer.release()
        return pending

    def stop(self, conversation_id: int | None = None) -> None:
        """Stop the reply to ``conversation_id`` (default: every reply)."""
        for token, (conversation, _spec, _leaf) in list(self._awaiting.items()):
            if conversation_id is None or conversation.id == conversation_id:
                del self._awaiting[token]  # its question was not sent: nothing is kept
                if not self._pending and not self._awaiting:
                    self.indexer.release()
                self.reply_finished.emit(conversation.id, None)
        for job_id, pending in list(self._pending.items()):
            if conversation_id is None or pending.conversation_id == conversation_id:
                self.inference.cancel(job_id)

    # -- inference results ------------------------------------------------------------
    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        pending = self._pending.get(job_id)
        if pending is not None:
            self.reply_started.emit(pending.conversation_id)

    @Slot(int, str)
    def _on_text(self, job_id: int, text: str) -> None:
        pending = self._pending.get(job_id)
        if pending is None:
            return
        pending.text += text
        now = time.monotonic()
        if now - pending.saved_at >= CHECKPOINT_INTERVAL_S:
            # A checkpoint of the reply so far: if the app dies, the next start stores it.
            pending.saved_at = now
            self.checkpoints.save(f"{DRAFT_PREFIX}{job_id}", json.dumps({
                "conversation_id": pending.conversation_id, "parent_id": pending.parent_id,
                "model_id": pending.model_id, "text": pending.text}))
        self.reply_text.emit(pending.conversation_id, text)

    def recover_interrupted(self) -> list[Message]:
        """Store the replies a previous run was writing when it ended (their last
        checkpoint), marked interrupted. Call once at start-up, before any request."""
        recovered = []
        for key, value in self.store.states(DRAFT_PREFIX).items():
            self.store.delete_state(key)
            try:
                draft = json.loads(value)
                conversation_id, parent_id = int(draft["conversation_id"]), int(draft["parent_id"])
                text, model_id = str(draft["text"]), draft.get("model_id")
            except (ValueError, KeyError, TypeError):
                log.warning("dropping an unreadable reply checkpoint %s", key)
                continue
            parent = self.store.get_message(parent_id)
            if not text.strip() or parent is None or parent.conversation_id != conversation_id:
                continue
            recovered.append(self.store.add_message(
                conversation_id, Role.ASSISTANT, text.strip(), parent_id=parent_id,
                model_id=model_id, stats=MessageStats(finish_reason=FinishReason.INTERRUPTED)))
            log.info("kept %d characters of a reply interrupted in conversation %d",
                     len(text), conversation_id)
        return recovered

    def _end_draft(self, job_id: int, pending: _Pending) -> str | None:
        """No more checkpoints of this reply; the key of the one it may have left."""
        if not pending.saved_at:
            return None
        key = f"{DRAFT_PREFIX}{job_id}"
        self.checkpoints.end(key)
        return key

    def _drop_draft(self, key: str) -> None:
        try:
            self.store.delete_state(key)
        except StoreError as exc:  # the reply still ends; the checkpoint waits for a start
            log.warning("could not remove the reply checkpoint: %s", exc)

    def _store_reply(self, job_id: int, result: GenerationResult) -> None:
        pending = self._take(job_id)
        if pending is None:
            return
        draft = self._end_draft(job_id, pending)
        try:
            # The reply replaces its checkpoint in one transaction: a crash keeps one (a
            # power cut before the sync, the checkpoint). Not waiting for the disk here
            # (an fsync in the reply's last frame): the writer thread syncs it, then it
            # is announced, after its question.
            with deferred_sync(self.store):
                message = self.session.store_reply(pending.conversation_id,
                                                   pending.parent_id, result,
                                                   pending.model_id, pending.sources,
                                                   checkpoint=draft)
        except StoreError as exc:  # the checkpoint stays: the next start keeps it
            self.reply_failed.emit(pending.conversation_id, f"The reply was not saved. {exc}")
            return
        if message is not None:
            self._sync_then_announce(message)
        elif draft is not None:
            self._drop_draft(draft)
        if result.context is not None:
            self._show_context(pending.conversation_id, result.context)
        self.reply_finished.emit(pending.conversation_id, message)

    # -- the model's memory -------------------------------------------------------------
    @Slot(int, object)
    def _on_context_planned(self, conversation_id: int, use: ContextUse) -> None:
        self.session.note_context(use)
        self._show_context(conversation_id, use)

    def _show_context(self, conversation_id: int, use: ContextUse) -> None:
        self._context[conversation_id] = use
        self.context_changed.emit(conversation_id, use.first_in_memory, use.used_tokens,
                                  use.n_ctx)

    def announce_context(self, conversation_id: int) -> None:
        """Emit ``context_changed`` for a conversation as it stands (when it is opened):
        the stored memory start of its branch on screen, and the tokens its last reply
        left in the context."""
        conversation = self.store.get_conversation(conversation_id)
        if conversation is None:
            return
        use = self._context.get(conversation_id)
        if use is not None:
            used, n_ctx = use.used_tokens, use.n_ctx
        else:  # the last reply on the branch: the leaf, or the leaf's parent
            last = self.store.get_message(conversation.current_leaf_id or 0)
            if last is not None and last.role != Role.ASSISTANT:
                last = self.store.get_message(last.parent_id or 0)
            used = ((last.stats.prompt_tokens or 0) + (last.stats.completion_tokens or 0)
                    if last is not None and last.role == Role.ASSISTANT else 0)
            n_ctx = conversation.params.n_ctx
        self.context_changed.emit(conversation_id, self.store.memory_start(conversation_id),
                                  used, n_ctx)

    @Slot(int, object)
    def _on_ended(self, job_id: int, end: JobEnd) -> None:
        if end.result is not None:  # finished or stopped: the reply is kept
            self._store_reply(job_id, end.result)
            return
        pending = self._take(job_id)
        if pending is not None:
            if (draft := self._end_draft(job_id, pending)) is not None:
                self._drop_draft(draft)
            self.reply_failed.emit(pending.conversation_id, end.reason)
