"""The branch a prompt is planned from, read without walking it all again each turn.

Sending in a long chat needs the whole branch on screen (the planner counts what it
leaves out), and reading 1,000 messages took ~25 ms on the GUI thread, every send. Messages
are never changed in place (an edit is a new version), so the branch read last time is
still the start of the branch now: ``BranchReader`` reads only its last few messages,
finds the first of them in the branch it kept, and reuses everything above it. It keeps
one chat's branch (the one being written in); another chat, a branch that forked above
the last few messages, or a kept branch that does not match is read whole.

A chat's first send would still read it whole. ``offer`` takes a branch read elsewhere
(the writer thread reads it when a chat is opened), so that send reads only its end.
Whatever is kept is checked against the branch's end first, so an offer that is out of
date, or of another chat, costs a whole read at worst.
"""

from __future__ import annotations

import threading

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
        self._lock = threading.Lock()  # ``offer`` comes from another thread
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

    def offer(self, conversation_id: int, branch: list[Message]) -> None:
        """Keep ``branch``, read from the store on any thread, for the next read of
        that conversation to build on."""
        self._keep(conversation_id, list(branch))

    def forget(self) -> None:
        """Drop the kept branch (the store it came from changed under it)."""
        self._keep(None, [])

    def _reused(self, conversation_id: int, tail: list[Message]) -> list[Message] | None:
        with self._lock:
            kept, branch, index = self._conversation, self._branch, self._index
        if conversation_id != kept:
            return None
        at = index.get(tail[0].id)
        if at is None or branch[at] != tail[0]:
            return None
        return branch[:at] + tail

    def _keep(self, conversation_id: int | None, branch: list[Message]) -> None:
        index = {m.id: i for i, m in enumerate(branch)}
        with self._lock:
            self._conversation, self._branch, self._index = conversation_id, branch, index
