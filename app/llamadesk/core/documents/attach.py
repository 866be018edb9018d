"""Files attached to one question: whole when they fit, searched when they do not.

A small attachment goes into the prompt whole (each page or section a passage, so the
sources still name them). One too large for the room is indexed in a private in-memory
database (the same parser, chunker and BM25 search as a collection, nothing written to
disk) and only its best passages go in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from llamadesk.core.documents.chunker import estimate_tokens
from llamadesk.core.documents.index import DocumentIndex, Passage
from llamadesk.core.documents.parsers import DocumentError, parse_file
from llamadesk.core.documents.quoting import fit_passages, quote_passages
from llamadesk.core.store import ConversationStore

#: Passages searched for when attachments do not fit whole.
ATTACH_K = 8


def attachment_passages(paths: Sequence[Path], question: str, room: int, *,
                        count_tokens: Callable[[str], int] = estimate_tokens
                        ) -> tuple[list[Passage], list[tuple[str, str]]]:
    """The passages of the attached files to quote within ``room`` tokens, and the files
    that could not be read with the reason."""
    whole: list[Passage] = []
    readable: list[Path] = []
    failed: list[tuple[str, str]] = []
    for path in paths:
        try:
            sections = parse_file(path)
        except DocumentError as exc:
            failed.append((str(path), str(exc)))
            continue
        readable.append(path)
        whole += [Passage(s.text, str(path.absolute()), s.page, s.heading) for s in sections]
    if not whole or count_tokens(quote_passages(whole)) <= room:
        return whole, failed
    store = ConversationStore(":memory:")
    try:
        index = DocumentIndex(store, count_tokens=count_tokens)
        index.add("attached", readable)
        index.update("attached")
        found = index.search("attached", question, k=ATTACH_K)
    finally:
        store.close()
    return fit_passages(found, room, count_tokens), failed
