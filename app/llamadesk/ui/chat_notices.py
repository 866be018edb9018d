"""What went wrong in a chat, said in that chat even when it is not the one on screen.

A sync the disk refused (``ChatController.sync_failed``) or a reply that failed may
come while the user reads another chat: the sentences are kept, each once and in
order (a refused sync's warning is never replaced by a later failure), until that chat
is opened, where the banner says them; the status bar names the chat at once. A chat
deleted meanwhile keeps nothing. Nothing is kept past the window: closing it closes
the store, and the last connection's checkpoint writes and syncs the database file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.ui.banner import ErrorBanner


class ChatNotices:
    """Sentences for the banner of one chat, kept while another is on screen."""

    def __init__(self, banner: ErrorBanner, store: ConversationStore,
                 notice: Callable[[str], None]) -> None:
        self._banner = banner
        self._store = store
        self._notice = notice  # a short note in the window's status bar
        self._waiting: dict[int, list[str]] = {}

    def say(self, conversation_id: int, shown: int | None, text: str) -> None:
        """``text`` about ``conversation_id``: in the banner when it is ``shown``, else
        kept until ``opened`` beside what already waits for it."""
        if conversation_id == shown:
            said = self._banner.label.text() if self._banner.isVisible() else ""
            if text not in said.split("\n"):  # beside what is still said, not over it
                self._banner.show_message(f"{said}\n{text}" if said else text)
            return
        try:
            chat = self._store.get_conversation(conversation_id)
        except StoreError:  # the disk that refused the sync may refuse this read too
            chat, title = None, ""
        else:
            if chat is None:
                return  # deleted before its job ended: there is nothing to open
            title = chat.title
        waiting = self._waiting.setdefault(conversation_id, [])
        if text not in waiting:
            waiting.append(text)
        where = f"“{title}”" if title else "another chat"
        self._notice(f"Something needs your attention in {where}: open it to read what.")

    def opened(self, conversation_id: int) -> None:
        """The chat is on screen now: say what waited for it."""
        waiting = self._waiting.pop(conversation_id, None)
        if waiting:
            self._banner.show_message("\n".join(waiting))

    def forget(self, conversation_ids: Iterable[int]) -> None:
        """These chats were deleted: nothing waits for them."""
        for conversation_id in conversation_ids:
            self._waiting.pop(conversation_id, None)
