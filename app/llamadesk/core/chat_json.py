"""A conversation as a versioned JSON document, and back, losing nothing.

The document holds every message of every branch (the parent-id tree), each message's
model, statistics and finish reason, the chat's title, system prompt, sampling
settings and the branch on screen::

    {
      "format": "llamadesk-conversation",
      "format_version": 1,
      "app_version": "0.1.0",               (informative)
      "exported_at": 1714572000.0,          (informative)
      "conversation": {
        "title": "...", "created_at": 1714571000.0, "updated_at": 1714571990.5,
        "model_id": "smollm2-135m-instruct" | null, "system_prompt": "...",
        "params": {"temperature": 0.7, ...},  (SamplingParams; missing keys: defaults)
        "current_leaf": 4 | null, "origin": "api" (optional: kept from the local API)
      },
      "messages": [
        {"id": 1, "parent": null, "role": "user" | "assistant" | "system",
         "content": "...", "created_at": 1714571001.2, "model_id": null,
         "stats": {"prompt_tokens": null, "completion_tokens": null, "ttft_ms": null,
                   "tokens_per_s": null, "prompt_tokens_per_s": null,
                   "finish_reason": "stop" | "length" | "stopped" | "interrupted" | null,
                   "finish_detail": "why it was interrupted" (optional)},
         "sources": [{"path": "...", "page": 3 | null, "heading": "..." | null,
                      "text": "the passage", "score": -1.2}]  (optional: the passages
                      from the user's documents that a reply was given)}
      ]
    }

Message ids are local to the document (1, 2, … in the order the messages were
written); an import gives them new ids and keeps the shape of the tree, the order of
versions and every field.

Compatibility: unknown keys are ignored on import, so a later version can add an
optional field (for example where the model's memory of a chat starts) and older
versions still read its files. ``format_version`` increases only for a change an older
version would misread; a file with a newer version is refused with a clear reason.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from llamadesk import __version__
from llamadesk.core.chat_json_fields import (
    ChatDocumentError as ChatDocumentError,
)
from llamadesk.core.chat_json_fields import ChatFormatError as ChatFormatError
from llamadesk.core.chat_json_fields import NewerFormatError as NewerFormatError
from llamadesk.core.chat_json_fields import (
    _array,
    _int,
    _int_or_none,
    _number,
    _number_or_none,
    _object,
    _str,
    _str_or_none,
)
from llamadesk.core.conversation import (
    Conversation,
    FinishReason,
    Message,
    MessageStats,
    Role,
    SamplingParams,
)
from llamadesk.core.db import sqlite
from llamadesk.core.documents.index import Passage
from llamadesk.core.documents.quoting import sources
from llamadesk.core.store import ConversationStore

FORMAT_NAME = "llamadesk-conversation"
FORMAT_VERSION = 1
#: Larger files are refused before they are read (a chat of 100,000 long replies is
#: well under this).
MAX_DOCUMENT_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class DocumentMessage:
    """One message of a document; ``id`` and ``parent`` are local to the document."""

    id: int
    parent: int | None
    role: Role
    content: str
    created_at: float
    model_id: str | None
    stats: MessageStats
    #: The document passages a reply was given (core/documents/quoting.py).
    sources: tuple[Passage, ...] = ()


@dataclass(frozen=True)
class ChatDocument:
    """A validated document: a conversation and its whole message tree, parents before
    their followers."""

    title: str
    created_at: float
    updated_at: float
    model_id: str | None
    system_prompt: str
    params: SamplingParams
    current_leaf: int | None
    messages: tuple[DocumentMessage, ...]
    origin: str | None = None  # "api": kept from the local API


# -- export ---------------------------------------------------------------------------------
def conversation_tree(store: ConversationStore,
                      conversation_id: int) -> tuple[Conversation, list[Message]]:
    """The conversation and every message of every branch, oldest first, read in one
    transaction so they agree. Raises LookupError if there is no such conversation."""
    with store.transaction() as db:
        conversation = store.get_conversation(conversation_id)
        if conversation is None:
            raise LookupError(f"there is no conversation {conversation_id}")
        rows = db.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                          (conversation_id,)).fetchall()
    return conversation, [_message_from_row(r) for r in rows]


def export_document(store: ConversationStore, conversation_id: int) -> dict[str, Any]:
    """The conversation as a JSON-ready document (see the module's docstring)."""
    conversation, messages = conversation_tree(store, conversation_id)
    local = {m.id: n for n, m in enumerate(messages, start=1)}
    exported = []
    for message in messages:
        if message.parent_id is not None and message.parent_id not in local:
            raise ChatDocumentError(
                f"conversation {conversation_id} is damaged: message {message.id} follows "
                f"message {message.parent_id}, which is not in it")
        exported.append({
            "id": local[message.id],
            "parent": None if message.parent_id is None else local[message.parent_id],
            "role": str(message.role),
            "content": message.content,
            "created_at": message.created_at,
            "model_id": message.model_id,
            "stats": _stats_dict(message.stats),
            **_sources_dict(store, message.id),
        })
    leaf = conversation.current_leaf_id
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "exported_at": time.time(),
        "conversation": {
            "title": conversation.title,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
            "model_id": conversation.model_id,
            "system_prompt": conversation.system_prompt,
            "params": conversation.params.to_dict(),
            "current_leaf": local.get(leaf) if leaf is not None else None,
            **({"origin": conversation.origin} if conversation.origin else {}),
        },
        "messages": exported,
    }


def _sources_dict(store: ConversationStore, message_id: int) -> dict[str, Any]:
    found = sources(store, message_id)
    if not found:
        return {}
    return {"sources": [{"path": p.path, "page": p.page, "heading": p.heading,
                         "text": p.text, "score": p.score} for p in found]}


def document_text(document: Mapping[str, Any]) -> str:
    """The document as JSON text (UTF-8 friendly, one key per line, ending in a new line)."""
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def conversation_json(store: ConversationStore, conversation_id: int) -> str:
    """The conversation as JSON text, ready to write to a file."""
    return document_text(export_document(store, conversation_id))


def _stats_dict(stats: MessageStats) -> dict[str, Any]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "ttft_ms": stats.ttft_ms,
        "tokens_per_s": stats.tokens_per_s,
        "prompt_tokens_per_s": stats.prompt_tokens_per_s,
        "finish_reason": str(stats.finish_reason) if stats.finish_reason else None,
        # Only when there is one: documents without it stay as they were.
        **({"finish_detail": stats.finish_detail} if stats.finish_detail else {}),
    }


def _message_from_row(row: sqlite.Row) -> Message:
    reason = row["finish_reason"]
    return Message(
        id=int(row["id"]), conversation_id=int(row["conversation_id"]),
        parent_id=row["parent_id"], role=Role(row["role"]), content=row["content"],
        created_at=row["created_at"], model_id=row["model_id"],
        stats=MessageStats(
            prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
            ttft_ms=row["ttft_ms"], tokens_per_s=row["tokens_per_s"],
            prompt_tokens_per_s=row["prompt_tokens_per_s"],
            finish_reason=FinishReason(reason) if reason else None,
            finish_detail=row["finish_detail"]))


# -- reading and checking -------------------------------------------------------------------
def read_document(path: Path) -> ChatDocument:
    """Read and check a document file. Raises ChatFormatError (with the reason) for a
    file that is too big, not JSON, from a newer version or inconsistent; OSError if it
    cannot be read."""
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise ChatFormatError(f"{path.name} is too big to be a chat export "
                              f"({size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,})")
    with path.open("rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)  # the file may grow after stat()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ChatFormatError(f"{path.name} is too big to be a chat export")
    return parse_document(data)


def parse_document(data: str | bytes) -> ChatDocument:
    """Check a document's text and return what it holds. Raises ChatFormatError with a
    reason that names the offending field (NewerFormatError for a newer format)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ChatFormatError("the document is too big to be a chat export")
    try:
        raw = json.loads(data)
    except RecursionError as exc:
        raise ChatFormatError("not a chat export: the JSON is nested too deeply") from exc
    except ValueError as exc:  # also bad UTF-8 (UnicodeDecodeError)
        raise ChatFormatError(f"not a JSON file ({exc})") from exc
    if not isinstance(raw, dict):
        raise ChatFormatError("not a chat export: the JSON is not an object")
    kind = raw.get("format")
    if kind != FORMAT_NAME:
        hint = (" (it is a backup's index: import the whole folder)"
                if kind == "llamadesk-backup" else "")
        raise ChatFormatError(f"not a LlamaDesk chat export: its format is {kind!r}, "
                              f"not {FORMAT_NAME!r}{hint}")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ChatFormatError(f"format_version must be a whole number from 1, not {version!r}")
    if version > FORMAT_VERSION:
        raise NewerFormatError(
            f"this chat was exported by a newer LlamaDesk (format {version}; this version "
            f"reads format {FORMAT_VERSION}). Update the app to import it.")
    conversation = _object(raw, "conversation", "")
    messages = _messages(_array(raw, "messages", ""))
    leaf = _int_or_none(conversation, "current_leaf", "conversation")
    if leaf is not None and leaf not in {m.id for m in messages}:
        raise ChatFormatError(f"conversation.current_leaf is {leaf}, but there is no "
                              f"message {leaf}")
    return ChatDocument(
        title=_str(conversation, "title", "conversation"),
        created_at=_number(conversation, "created_at", "conversation"),
        updated_at=_number(conversation, "updated_at", "conversation"),
        model_id=_str_or_none(conversation, "model_id", "conversation"),
        system_prompt=_str(conversation, "system_prompt", "conversation"),
        params=_params(_object(conversation, "params", "conversation")),
        current_leaf=leaf,
        messages=_parents_first(messages),
        origin=(_str_or_none(conversation, "origin", "conversation")
                if "origin" in conversation else None),
    )


def _messages(items: list[Any]) -> list[DocumentMessage]:
    messages: list[DocumentMessage] = []
    seen: set[int] = set()
    for n, item in enumerate(items):
        where = f"messages[{n}]"
        if not isinstance(item, dict):
            raise ChatFormatError(f"{where} must be an object")
        message_id = _int(item, "id", where)
        if message_id in seen:
            raise ChatFormatError(f"{where}: there are two messages with id {message_id}")
        seen.add(message_id)
        role = _str(item, "role", where)
        if role not in set(Role):
            raise ChatFormatError(f"{where}.role must be one of "
                                  f"{', '.join(sorted(Role))}, not {role!r}")
        stats = _object(item, "stats", where)
        messages.append(DocumentMessage(
            id=message_id,
            parent=_int_or_none(item, "parent", where),
            role=Role(role),
            content=_str(item, "content", where),
            created_at=_number(item, "created_at", where),
            model_id=_str_or_none(item, "model_id", where),
            stats=_stats(stats, f"{where}.stats"),
            sources=_sources(item, where),
        ))
    return messages


def _sources(item: dict[str, Any], where: str) -> tuple[Passage, ...]:
    if "sources" not in item:
        return ()
    found = []
    for n, source in enumerate(_array(item, "sources", where)):
        at = f"{where}.sources[{n}]"
        if not isinstance(source, dict):
            raise ChatFormatError(f"{at} must be an object")
        score = _number_or_none(source, "score", at) if "score" in source else None
        found.append(Passage(
            text=_str(source, "text", at), path=_str(source, "path", at),
            page=_int_or_none(source, "page", at) if "page" in source else None,
            heading=_str_or_none(source, "heading", at) if "heading" in source else None,
            score=0.0 if score is None else score))
    return tuple(found)


def _stats(data: dict[str, Any], where: str) -> MessageStats:
    reason = _str_or_none(data, "finish_reason", where)
    if reason is not None and reason not in set(FinishReason):
        raise ChatFormatError(f"{where}.finish_reason must be one of "
                              f"{', '.join(sorted(FinishReason))} or null, not {reason!r}")
    return MessageStats(
        prompt_tokens=_int_or_none(data, "prompt_tokens", where),
        completion_tokens=_int_or_none(data, "completion_tokens", where),
        ttft_ms=_number_or_none(data, "ttft_ms", where),
        tokens_per_s=_number_or_none(data, "tokens_per_s", where),
        prompt_tokens_per_s=_number_or_none(data, "prompt_tokens_per_s", where),
        finish_reason=FinishReason(reason) if reason is not None else None,
        finish_detail=(_str_or_none(data, "finish_detail", where)
                       if "finish_detail" in data else None),
    )


def _params(data: dict[str, Any]) -> SamplingParams:
    """Sampling settings: every known key is checked, missing ones keep their defaults
    (a file from before a setting existed), unknown ones are ignored."""
    values: dict[str, Any] = {}
    for spec in fields(SamplingParams):
        if spec.name not in data:
            continue
        where = "conversation.params"
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            values[spec.name] = _int(data, spec.name, where)
        else:
            values[spec.name] = _number(data, spec.name, where)
    return SamplingParams(**values)


def _parents_first(messages: list[DocumentMessage]) -> tuple[DocumentMessage, ...]:
    """The messages ordered so each comes after the one it follows, otherwise in id
    order (so versions keep their order). Raises for a parent that is not there and
    for loops."""
    by_id = {m.id: m for m in messages}
    children: dict[int | None, list[int]] = {}
    for m in messages:
        if m.parent is not None and m.parent not in by_id:
            raise ChatFormatError(f"message {m.id} follows message {m.parent}, "
                                  "which is not in the file")
        children.setdefault(m.parent, []).append(m.id)
    ready = list(children.get(None, []))
    heapq.heapify(ready)
    ordered: list[DocumentMessage] = []
    while ready:
        message_id = heapq.heappop(ready)
        ordered.append(by_id[message_id])
        for child in children.get(message_id, []):
            heapq.heappush(ready, child)
    if len(ordered) != len(messages):
        placed = {m.id for m in ordered}
        loop = sorted(m.id for m in messages if m.id not in placed)
        shown = ", ".join(str(i) for i in loop[:10]) + (", …" if len(loop) > 10 else "")
        raise ChatFormatError(f"the messages' parent links go round in a loop "
                              f"(messages {shown} never reach a first message)")
    return tuple(ordered)


# -- import ------------------------------------------------------------------------------------
def import_document(store: ConversationStore, document: ChatDocument) -> Conversation:
    """Add the document as a new conversation, in one transaction: all of it or, if
    anything fails, nothing. Returns the new conversation."""
    try:
        with store.transaction() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created_at, updated_at, model_id, "
                "system_prompt, params, origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (document.title, document.created_at, document.updated_at,
                 document.model_id, document.system_prompt,
                 json.dumps(document.params.to_dict()), document.origin))
            conversation_id = int(cur.lastrowid or 0)
            new_ids: dict[int, int] = {}
            for m in document.messages:  # parents first, so every parent id exists
                s = m.stats
                cur = db.execute(
                    "INSERT INTO messages (conversation_id, parent_id, role, content, "
                    "created_at, model_id, prompt_tokens, completion_tokens, ttft_ms, "
                    "tokens_per_s, prompt_tokens_per_s, finish_reason, finish_detail) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (conversation_id, None if m.parent is None else new_ids[m.parent],
                     str(m.role), m.content, m.created_at, m.model_id, s.prompt_tokens,
                     s.completion_tokens, s.ttft_ms, s.tokens_per_s, s.prompt_tokens_per_s,
                     str(s.finish_reason) if s.finish_reason else None, s.finish_detail))
                new_ids[m.id] = int(cur.lastrowid or 0)
                db.executemany(
                    "INSERT INTO message_sources (message_id, rank, path, page, heading, "
                    "text, score) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(new_ids[m.id], rank, p.path, p.page, p.heading, p.text, p.score)
                     for rank, p in enumerate(m.sources, 1)])
            leaf = document.current_leaf
            db.execute("UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                       (None if leaf is None else new_ids[leaf], conversation_id))
    except sqlite.Error as exc:
        raise ChatDocumentError(f"the chat could not be stored, nothing was imported: "
                              f"{exc}") from exc
    conversation = store.get_conversation(conversation_id)
    assert conversation is not None
    return conversation


def import_file(store: ConversationStore, path: Path) -> Conversation:
    """Read, check and import one document file as a new conversation (all or
    nothing)."""
    return import_document(store, read_document(path))
