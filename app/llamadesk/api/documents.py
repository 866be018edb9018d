"""The local API's document extension: ``"collections": [...]`` on a chat completion.

The best passages of the named collections that fit the model's context are quoted into
the newest user message (core/documents/quoting.py, as in the window and the CLI), and
the response carries them as ``sources``. The search runs off the event loop, on a
connection of its own (one per request: a store connection belongs to one thread).
Collections indexed with an embedding model are searched hybrid: the question is
embedded by that model through ``embed_query`` (the app's query embedder, its own
llama.cpp context on its own thread; services/query_embedder.py), else by keywords.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from llamadesk.api.errors import ApiError
from llamadesk.core.conversation import Role
from llamadesk.core.documents.index import CollectionError, DocumentIndex, Passage
from llamadesk.core.documents.quoting import fit_passages, passage_room, with_passages
from llamadesk.core.paths import AppPaths
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.services.engine_types import GenerationRequest

#: Passages retrieved per request before they are fitted to the context.
API_K = 5

#: search(collections, question, k) -> the best passages, best first.
DocumentSearch = Callable[[Sequence[str], str, int], list[Passage]]
#: embed_query(model id, question) -> its vector, or None (then keywords only).
EmbedQuery = Callable[[str, str], "list[float] | None"]


def store_search(open_store: Callable[[], ConversationStore],
                 embed_query: EmbedQuery | None = None) -> DocumentSearch:
    """A search over the collections of the store ``open_store`` opens (the app's
    database with its key), one connection per request; hybrid where the collections
    share an embedding model and ``embed_query`` is given."""
    def search(names: Sequence[str], question: str, k: int) -> list[Passage]:
        store = open_store()
        try:
            index = DocumentIndex(store)
            models = {m for m in (index.get(n).embed_model for n in names) if m}
            vector = (embed_query(models.pop(), question)
                      if embed_query is not None and len(models) == 1 else None)
            return index.search(names, question, k=k, query_vector=vector)
        finally:
            store.close()
    return search


def app_store_opener(paths: AppPaths) -> Callable[[], ConversationStore]:
    """Opens the app's store with its key, read from the keychain at the first request
    and kept for the server's life (a passphrase-protected store cannot be opened here:
    each request says so)."""
    from llamadesk.core.store_open import open_with_key, store_key

    found: list[bytes | None] = []

    def opener() -> ConversationStore:
        if not found:
            found.append(store_key(paths))
        return open_with_key(paths, found[0])
    return opener


async def add_documents(gen: GenerationRequest, collections: list[str],
                        search: DocumentSearch | None, n_ctx: int
                        ) -> tuple[GenerationRequest, list[Passage]]:
    """``gen`` with the passages of ``collections`` that match its newest question
    quoted in it, and those passages; ApiError for an unknown collection."""
    if search is None:
        raise ApiError(400, "this server has no document collections",
                       code="documents_unavailable", param="collections")
    question = next((m.content for m in reversed(gen.history) if m.role == Role.USER), "")
    try:
        found = await asyncio.to_thread(search, collections, question, API_K)
    except CollectionError as exc:
        raise ApiError(404, str(exc), code="collection_not_found",
                       param="collections") from exc
    except StoreError as exc:
        raise ApiError(500, str(exc), code="documents_failed") from exc
    passages = fit_passages(found, passage_room(n_ctx, gen.params.max_tokens))
    return dataclasses.replace(gen, history=with_passages(gen.history, passages)), passages


def sources_json(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """The passages as the response's ``sources``."""
    return [{"index": n, "path": p.path, "page": p.page, "heading": p.heading,
             "text": p.text, "score": p.score} for n, p in enumerate(passages, 1)]
