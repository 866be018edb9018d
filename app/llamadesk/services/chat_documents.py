"""Which documents a chat in the window answers from: the collections switched on for
it (kept in the store's app state, so a chat remembers them) and files attached to the
next question only. No Qt; the chat controller asks for the passages of each reply.

Retrieval runs on the GUI thread (milliseconds, docs/performance.md): by keywords, or,
for collections indexed with an embedding model, hybrid with the question's vector,
which the controller has the query embedder (services/query_embedder.py) make first.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llamadesk.core.documents.index import CollectionError, DocumentIndex, Passage
from llamadesk.core.store import ConversationStore, StoreError

log = logging.getLogger(__name__)

#: app_state key prefix of a chat's collections (a JSON list of names).
DOCS_PREFIX = "docs:"
#: Passages retrieved per reply before they are fitted to the context.
WINDOW_K = 5


class ChatDocuments:
    """Collections per chat, attachments for the next question, passages per reply."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.index = DocumentIndex(store)
        self._attached: dict[int, list[Path]] = {}
        #: Files that could not be read at the last reply, with the reason.
        self.last_failures: list[tuple[str, str]] = []

    def collections(self, conversation_id: int) -> list[str]:
        """The collections switched on for a chat (ones since removed are left out)."""
        raw = self.store.get_state(f"{DOCS_PREFIX}{conversation_id}")
        try:
            names = [str(n) for n in json.loads(raw)] if raw else []
        except (ValueError, TypeError):
            return []
        known = {c.name for c in self.index.collections()}
        return [n for n in names if n in known]

    def embedding_model(self, conversation_id: int) -> str | None:
        """The embedding model that the chat's collections were indexed with (None: none
        has one, or they differ: then they are searched by keywords only)."""
        models = {c.embed_model for c in self.index.collections()
                  if c.name in self.collections(conversation_id)} - {None}
        if len(models) > 1:
            log.warning("a chat's collections use %d embedding models; keyword search",
                        len(models))
        return models.pop() if len(models) == 1 else None

    def set_collections(self, conversation_id: int, names: list[str]) -> None:
        """Switch collections on for a chat (an empty list: none)."""
        if names:
            self.store.set_state(f"{DOCS_PREFIX}{conversation_id}", json.dumps(names))
        else:
            self.store.delete_state(f"{DOCS_PREFIX}{conversation_id}")

    def attach(self, conversation_id: int, paths: list[Path]) -> None:
        """Files for the next question of a chat."""
        self._attached.setdefault(conversation_id, []).extend(paths)

    def attached(self, conversation_id: int) -> list[Path]:
        """The files waiting for the chat's next question."""
        return list(self._attached.get(conversation_id, []))

    def clear_attached(self, conversation_id: int) -> None:
        """Forget the files waiting for a chat's next question."""
        self._attached.pop(conversation_id, None)

    def passages(self, conversation_id: int, question: str, n_ctx: int,
                 max_tokens: int, query_vector: list[float] | None = None) -> list[Passage]:
        """The passages for a reply to ``question``: the attached files (taken: they go
        with this question only), then the chat's collections (hybrid with
        ``query_vector``, the question embedded by their model), within the context."""
        # Imported at the first reply, not when the window starts.
        from llamadesk.core.documents.quoting import fit_passages, passage_room

        room = passage_room(n_ctx, max_tokens)
        first: list[Passage] = []
        self.last_failures = []
        attached = self._attached.pop(conversation_id, [])
        if attached:
            # Only with files attached: reading them (HTML, PDF, ...) stays out of memory
            # in a chat that has none (0.7 MB resident; docs/performance.md "Memory").
            from llamadesk.core.documents.attach import attachment_passages

            first, self.last_failures = attachment_passages(attached, question, room)
        found: list[Passage] = []
        names = self.collections(conversation_id)
        if names:
            try:
                found = self.index.search(names, question, k=WINDOW_K,
                                          query_vector=query_vector)
            except (CollectionError, StoreError) as exc:
                log.warning("document search failed: %s", type(exc).__name__)
        return fit_passages([*first, *found], room)
