"""The sidebar's list of conversations, newest first, fetched from the store in pages."""

from __future__ import annotations

import time

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from llamadesk.core.conversation import Conversation
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat_session import API_ORIGIN
from llamadesk.ui.operations import Operations, chat_changed

#: Rows read per page: a tall sidebar shows about this many; the view reads the next
#: page when it is scrolled to the end (or is not filled yet).
FETCH_PAGE = 64
API_BADGE = "⇄ API ·"  # before the title of a chat kept from the local API
ConversationIdRole = Qt.ItemDataRole.UserRole + 1

_Index = QModelIndex | QPersistentModelIndex
_ROLES = frozenset({Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole,
                    Qt.ItemDataRole.ToolTipRole, ConversationIdRole})


def when(timestamp: float, now: float | None = None) -> str:
    """A short, friendly time for the sidebar."""
    now = now or time.time()
    local, today = time.localtime(timestamp), time.localtime(now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    if now - timestamp < 6 * 86400:
        return time.strftime("%a", local)
    return time.strftime("%d %b %Y", local)


class ConversationListModel(QAbstractListModel):
    """Conversations for the sidebar. Rows are fetched lazily (canFetchMore /
    fetchMore), so ten thousand chats open as fast as ten. A rename in place is an
    operation of ``ops`` (a new ``Operations`` of its own when none is given)."""

    def __init__(self, store: ConversationStore, parent: object | None = None,
                 ops: Operations | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._store = store
        self._ops = ops if ops is not None else Operations(self)
        self._rows: list[Conversation] = []
        self._total = 0
        self.reload()

    def reload(self) -> None:
        """Re-read from the store (first page only)."""
        self.beginResetModel()
        self._total = self._store.count_conversations()
        self._rows = self._store.list_conversations(limit=FETCH_PAGE)
        self.endResetModel()

    # -- Qt model API -------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def canFetchMore(self, parent: _Index) -> bool:
        return not parent.isValid() and len(self._rows) < self._total

    def fetchMore(self, parent: _Index) -> None:
        if parent.isValid():
            return
        # After the last row listed: each page costs the same however far down it is.
        last = self._rows[-1] if self._rows else None
        more = self._store.list_conversations(limit=FETCH_PAGE, after=last)
        if not more:
            self._total = len(self._rows)
            return
        start = len(self._rows)
        self.beginInsertRows(QModelIndex(), start, start + len(more) - 1)
        self._rows.extend(more)
        self.endInsertRows()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        # A painted row asks for seven roles and uses two: the others return at once.
        if role not in _ROLES or not 0 <= (row := index.row()) < len(self._rows):
            return None
        conversation = self._rows[row]
        from_api = conversation.origin == API_ORIGIN
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{API_BADGE} {conversation.title}" if from_api else conversation.title
        if role == Qt.ItemDataRole.EditRole:
            return conversation.title
        if role == Qt.ItemDataRole.ToolTipRole:
            source = "\nKept from the local API" if from_api else ""
            return f"{conversation.title}{source}\nLast active {when(conversation.updated_at)}"
        if role == ConversationIdRole:
            return conversation.id
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.isValid() else base

    def setData(self, index: _Index, value: object,
                role: int = Qt.ItemDataRole.EditRole) -> bool:
        """Rename in place (F2 or double-click in the sidebar), as an operation: the other
        views hear of it from the change event; this row is updated here."""
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        conversation_id = self._rows[index.row()].id

        def rename() -> Conversation | None:
            self._store.rename_conversation(conversation_id, str(value))
            return self._store.get_conversation(conversation_id)

        return self._ops.run(rename, chat_changed(conversation_id), initiator=self,
                             success=self._show_renamed)

    def _show_renamed(self, renamed: Conversation | None) -> None:
        row = self.row_of(renamed.id) if renamed is not None else None
        if renamed is not None and row is not None:
            self._rows[row] = renamed
            self.dataChanged.emit(self.index(row), self.index(row))

    # -- lookups and live changes ------------------------------------------------------
    def row_of(self, conversation_id: int) -> int | None:
        """The row showing this conversation, if loaded."""
        for i, c in enumerate(self._rows):
            if c.id == conversation_id:
                return i
        return None

    def conversation_at(self, row: int) -> Conversation | None:
        """The conversation in ``row``."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def upsert(self, conversation: Conversation) -> None:
        """Show a new or changed conversation; a conversation that moved to the top
        moves without resetting the list."""
        row = self.row_of(conversation.id)
        if row is not None and row == 0:
            self._rows[0] = conversation
            self.dataChanged.emit(self.index(0), self.index(0))
            return
        if row is not None:
            self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), 0)
            del self._rows[row]
            self._rows.insert(0, conversation)
            self.endMoveRows()
            self.dataChanged.emit(self.index(0), self.index(0))
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, conversation)
        self._total += 1
        self.endInsertRows()

    def refresh(self, conversation_id: int) -> None:
        """Re-read one conversation: one active since it was listed (a new message, or
        new itself) moves to the top, any other change stays where it is."""
        conversation = self._store.get_conversation(conversation_id)
        row = self.row_of(conversation_id)
        if conversation is None:
            self.remove(conversation_id)
        elif row is None or conversation.updated_at != self._rows[row].updated_at:
            self.upsert(conversation)
        else:
            self._rows[row] = conversation
            self.dataChanged.emit(self.index(row), self.index(row))

    def remove(self, conversation_id: int) -> None:
        """Drop a deleted conversation from the list."""
        row = self.row_of(conversation_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._total -= 1
        self.endRemoveRows()
