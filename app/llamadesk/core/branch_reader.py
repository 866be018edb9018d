"""The branch a prompt is planned from, read without walking it all again each turn.

Sending in a long chat needs the whole branch on screen (the planner counts what it
leaves out), and reading 1,000 messages took ~25 ms on the GUI thread, every send. Messages
are never changed in place (an edit is a new version), so the branch read last time is
still the start of the branch now: ``BranchReader`` reads only its last few messages,
finds the first of them in the branch it kept, and reuses everything above it. It keeps
one chat's branch (the one being written in); another chat, a branch that forked above
the last few messages, or a kept branch that does not match is read whole.
"""

from __future__ import annotations

from llamadesk.core.conversation import Message
from llamadesk.core.store import ConversationStore

#: Messages read from the end of the branch each time; a turn adds two (question and
#: reply), so a fork or an edit a few messages up is still found in the kept branch.
TAIL = 8


class BranchReader:
    """Reads a conversation's branch on screen, oldest first, reusing the last one read."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self._conversation: int | None = None
        self._branch: list[Message] = []
        self._index: dict[int, int] = {}
        #: How the last read went: "tail" (the whole branch fit in it), "reused" or "whole".
        self.last_read = ""

    def branch(self, conversation_id: int) -> list[Message]:
        """The branch from its first message to the conversation's current leaf."""
        tail = self.store.branch_tail(conversation_id, TAIL)
        if not tail or tail[0].parent_id is None:
            branch, self.last_read = tail, "tail"
        elif (reused := self._reused(conversation_id, tail)) is not None:
            branch, self.last_read = reused, "reused"
        else:
            branch, self.last_read = self.store.messages(conversation_id), "whole"
        self._keep(conversation_id, branch)
        return list(branch)

    def forget(self) -> None:
        """Drop the kept branch (the store it came from changed under it)."""
        self._keep(None, [])

    def _reused(self, conversation_id: int, tail: list[Message]) -> list[Message] | None:
        if conversation_id != self._conversation:
            return None
        at = self._index.get(tail[0].id)
        if at is None or self._branch[at] != tail[0]:
            return None
        return self._branch[:at] + tail

    def _keep(self, conversation_id: int | None, branch: list[Message]) -> None:
        self._conversation = conversation_id
        self._branch = branch
        self._index = {m.id: i for i, m in enumerate(branch)}
