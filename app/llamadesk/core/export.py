"""Export a conversation as a Markdown document."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from llamadesk.core.conversation import Conversation, FinishReason, Message, Role

_NOTES = {
    FinishReason.STOPPED: "stopped",
    FinishReason.LENGTH: "cut at the token limit",
    FinishReason.INTERRUPTED: "interrupted",
}


def conversation_markdown(conversation: Conversation, messages: Sequence[Message],
                          model_names: dict[str, str] | None = None) -> str:
    """The branch on screen as Markdown: a title, the system prompt, then each message
    under a heading that says who wrote it."""
    names = model_names or {}
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created_at))
    lines = [f"# {conversation.title}", "", f"_Started {stamp}._", ""]
    if conversation.system_prompt.strip():
        lines += ["> **System prompt:** " + " ".join(conversation.system_prompt.split()), ""]
    for message in messages:
        if message.role == Role.USER:
            heading = "## You"
        elif message.role == Role.ASSISTANT:
            who = names.get(message.model_id or "", message.model_id or "Assistant")
            note = _NOTES.get(message.stats.finish_reason) if message.stats.finish_reason else None
            heading = f"## {who}" + (f" ({note})" if note else "")
        else:
            heading = "## System"
        lines += [heading, "", message.content.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def file_name_for(title: str, suffix: str = ".md") -> str:
    """A file name from a chat's title, safe on every OS."""
    kept = "".join(ch if ch.isalnum() or ch in " -_.,()" else " " for ch in title)
    name = " ".join(kept.split()).strip(" .")[:80] or "chat"
    return name + suffix


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
