"""Exporting a chat as Markdown."""

from __future__ import annotations

from pathlib import Path

from llamadesk.core.conversation import FinishReason, MessageStats, Role
from llamadesk.core.export import conversation_markdown, write_text_atomically
from llamadesk.core.store import ConversationStore


def test_markdown_has_the_branch_on_screen_with_who_wrote_what(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    c = store.create_conversation("Trip plans", system_prompt="Be  brief.\nPlease.")
    q = store.add_message(c.id, Role.USER, "Where to go?")
    store.add_message(c.id, Role.ASSISTANT, "An old answer", model_id="m1")
    store.add_message(c.id, Role.ASSISTANT, "**Lisbon**, then Porto.", parent_id=q.id,
                      model_id="m1", stats=MessageStats(finish_reason=FinishReason.STOPPED))
    conversation = store.get_conversation(c.id)
    assert conversation is not None
    text = conversation_markdown(conversation, store.messages(c.id), {"m1": "Model One"})
    store.close()
    assert text.startswith("# Trip plans\n")
    assert "> **System prompt:** Be brief. Please." in text
    assert "## You\n\nWhere to go?" in text
    assert "## Model One (stopped)\n\n**Lisbon**, then Porto." in text
    assert "An old answer" not in text, "only the branch on screen"


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "chat.md"
    target.write_text("old")
    write_text_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert not (tmp_path / "chat.md.tmp").exists()
