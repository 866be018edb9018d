"""Rows of the chat database turned into the app's dataclasses."""

from __future__ import annotations

import json

from llamadesk.core.conversation import (
    Conversation,
    FinishReason,
    Message,
    MessageStats,
    Role,
    SamplingParams,
)
from llamadesk.core.db import sqlite


def conversation_from_row(row: sqlite.Row) -> Conversation:
    """A ``Conversation`` from a row of the conversations table."""
    try:
        params = SamplingParams.from_dict(json.loads(row["params"] or "{}"))
    except (ValueError, TypeError, AttributeError):  # AttributeError: JSON not an object
        params = SamplingParams()  # a damaged settings blob must not hide the chat
    return Conversation(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model_id=row["model_id"],
        system_prompt=row["system_prompt"],
        params=params,
        current_leaf_id=row["current_leaf_id"],
        origin=row["origin"],
    )


# Reading a long branch builds thousands of messages (the prompt of every reply reads
# the whole branch on the GUI thread): enum values come from dicts, and a message with no
# statistics (every question) shares one empty MessageStats. About half the time of
# calling the enums and building a MessageStats for each.
_ROLES = {str(r): r for r in Role}
_REASONS = {str(r): r for r in FinishReason}
_NO_STATS = MessageStats()


def message_from_row(row: sqlite.Row) -> Message:
    """A ``Message`` from a row of the messages table."""
    reason = row["finish_reason"]
    stats = (row["prompt_tokens"], row["completion_tokens"], row["ttft_ms"],
             row["tokens_per_s"], row["prompt_tokens_per_s"], row["finish_detail"])
    role = row["role"]
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        parent_id=row["parent_id"],
        role=_ROLES.get(role) or Role(role),
        content=row["content"],
        created_at=row["created_at"],
        model_id=row["model_id"],
        stats=_NO_STATS if reason is None and stats == (None,) * 6 else MessageStats(
            prompt_tokens=stats[0],
            completion_tokens=stats[1],
            ttft_ms=stats[2],
            tokens_per_s=stats[3],
            prompt_tokens_per_s=stats[4],
            finish_reason=(_REASONS.get(reason) or FinishReason(reason)) if reason else None,
            finish_detail=stats[5],
        ),
    )
