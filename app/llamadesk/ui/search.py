"""Search across every chat: the sidebar's results list."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from llamadesk.core.conversation import Message
from llamadesk.core.store import ConversationStore

RESULT_LIMIT = 100
SNIPPET_CHARS = 90
ResultConversationRole = Qt.ItemDataRole.UserRole + 11
ResultMessageRole = Qt.ItemDataRole.UserRole + 12

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class SearchHit:
    """One matching message and the chat it is in."""

    message: Message
    conversation_title: str


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """The part of ``text`` around the first word of ``query``, on one line."""
    flat = " ".join(text.split())
    words = query.split()
    at = flat.lower().find(words[0].lower()) if words else -1
    start = max(0, at - width // 3) if at >= 0 else 0
    piece = flat[start:start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(flat) else "")


class SearchResultListModel(QAbstractListModel):
    """Messages that match the search box, newest first."""

    def __init__(self, store: ConversationStore, parent: object | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._store = store
        self._hits: list[SearchHit] = []
        self.query = ""

    def search(self, query: str) -> None:
        """Run ``query`` (every word must match, as a prefix). A StoreError leaves the
        results as they were."""
        query = query.strip()
        found = self._store.search(query, limit=RESULT_LIMIT) if query else []
        self.beginResetModel()
        self.query = query
        titles: dict[int, str] = {}
        hits = []
        for message in found:
            if message.conversation_id not in titles:
                conversation = self._store.get_conversation(message.conversation_id)
                titles[message.conversation_id] = conversation.title if conversation else ""
            hits.append(SearchHit(message, titles[message.conversation_id]))
        self._hits = hits
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._hits):
            return None
        hit = self._hits[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{hit.conversation_title}\n{snippet(hit.message.content, self.query)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return hit.message.content[:500]
        if role == ResultConversationRole:
            return hit.message.conversation_id
        if role == ResultMessageRole:
            return hit.message.id
        return None
