"""The list model behind the chat view.

It shows only the most recent part of the branch on screen (a window that grows when
the user scrolls up); given a page reader, it reads older pages from the store only
when they are wanted. So opening a long conversation and streaming into it cost the
same as for a short one. Streaming updates only the last row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from llamadesk.core.conversation import Message, MessageStats, Role
from llamadesk.core.documents.index import Passage

#: Rows shown when a conversation opens; older ones load in pages of this size.
PAGE_SIZE = 60


class MessageRole(IntEnum):
    """Item data roles of MessageListModel."""

    MESSAGE = Qt.ItemDataRole.UserRole + 1  # the ChatRow
    STREAMING = Qt.ItemDataRole.UserRole + 2  # bool
    KEY = Qt.ItemDataRole.UserRole + 3  # a stable key for render caches


@dataclass
class ChatRow:
    """One row: a stored message, or the reply being written (``message_id`` None)."""

    role: Role
    content: str
    model_id: str | None = None
    stats: MessageStats | None = None
    message_id: int | None = None
    streaming: bool = False
    version: int = 0  # bumped on every change of content, so caches know
    alternatives: tuple[int, int] | None = None  # (this one, how many) after edits
    memory_start: bool = False  # the model's memory begins here: earlier rows are beyond it
    sources: tuple[Passage, ...] = ()  # the document passages a reply was given

    @classmethod
    def from_message(cls, message: Message,
                     alternatives: tuple[int, int] | None = None) -> ChatRow:
        """A row for a stored message."""
        return cls(message.role, message.content, message.model_id, message.stats, message.id,
                   alternatives=alternatives)

    @property
    def key(self) -> tuple[object, int]:
        """Identifies this row's current look."""
        return (self.message_id if self.message_id is not None else "live", self.version)


_Index = QModelIndex | QPersistentModelIndex

#: Reads the page above a message: (message id, how many) -> the messages just above
#: it on its branch, oldest first, and their (this one, how many) versions.
OlderPages = Callable[[int, int], tuple[list[Message], dict[int, tuple[int, int]]]]


class MessageListModel(QAbstractListModel):
    """The messages of the conversation on screen, oldest first."""

    def __init__(self, parent: object | None = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._older: list[ChatRow] = []  # loaded from the store, not yet shown
        self._rows: list[ChatRow] = []
        self._memory_start: int | None = None
        self._older_pages: OlderPages | None = None
        self._oldest: Message | None = None  # the oldest message read, if pages remain
        #: The sources of stored replies by message id (the pane sets it; None: none).
        self.source_lookup: Callable[[list[int]], dict[int, tuple[Passage, ...]]] | None = None

    # -- Qt model API -------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == MessageRole.MESSAGE:
            return row
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return row.content
        if role == MessageRole.STREAMING:
            return row.streaming
        if role == MessageRole.KEY:
            return row.key
        return None

    # -- loading ----------------------------------------------------------------------
    def set_messages(self, messages: list[Message],
                     alternatives: dict[int, tuple[int, int]] | None = None,
                     older_pages: OlderPages | None = None) -> None:
        """Show a conversation (its most recent page); ``alternatives`` gives, for
        messages with other versions, (this one, how many). With ``older_pages``,
        ``messages`` is the end of the branch and older ones are read when wanted."""
        self.beginResetModel()
        alt = alternatives or {}
        rows = self._rows_of(messages, alt)
        self._older = rows[:-PAGE_SIZE] if len(rows) > PAGE_SIZE else []
        self._rows = rows[-PAGE_SIZE:]
        self._older_pages = older_pages
        first = messages[0] if messages else None
        self._oldest = first if older_pages and first and first.parent_id is not None else None
        self.endResetModel()

    def _rows_of(self, messages: list[Message],
                 alternatives: dict[int, tuple[int, int]]) -> list[ChatRow]:
        rows = [ChatRow.from_message(m, alternatives.get(m.id)) for m in messages
                if m.role != Role.SYSTEM]
        for row in rows:
            row.memory_start = row.message_id == self._memory_start
        self._add_sources(rows)
        return rows

    def clear(self) -> None:
        """Show nothing."""
        self.set_messages([])

    @property
    def has_older(self) -> bool:
        """Whether older messages are waiting to be shown."""
        return bool(self._older) or self._oldest is not None

    def _read_older(self, count: int) -> None:
        # Read pages from the store until ``count`` rows wait (system messages are
        # read but never shown) or the branch's first message has been read.
        while len(self._older) < count and self._oldest is not None and self._older_pages:
            messages, alternatives = self._older_pages(self._oldest.id, count)
            self._older[:0] = self._rows_of(messages, alternatives)
            first = messages[0] if messages else None
            self._oldest = first if first is not None and first.parent_id is not None else None

    def load_older(self, count: int = PAGE_SIZE) -> int:
        """Show up to ``count`` older messages above the first row; returns how many."""
        self._read_older(count)
        if not self._older:
            return 0
        page = self._older[-count:]
        self.beginInsertRows(QModelIndex(), 0, len(page) - 1)
        del self._older[-len(page):]
        self._rows[:0] = page
        self.endInsertRows()
        return len(page)

    # -- live changes -------------------------------------------------------------------
    def append_message(self, message: Message) -> None:
        """Add a stored message at the end."""
        self._append(ChatRow.from_message(message))

    def _append(self, row: ChatRow) -> None:
        row.memory_start = row.message_id is not None and row.message_id == self._memory_start
        n = len(self._rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self._rows.append(row)
        self.endInsertRows()

    def begin_reply(self, model_id: str | None = None) -> None:
        """Add an empty row for the reply about to stream in."""
        self.end_reply()
        self._append(ChatRow(Role.ASSISTANT, "", model_id=model_id, streaming=True))

    def name_reply_model(self, model_id: str | None) -> None:
        """Name the model writing the reply on the live row, if it has none yet (a row
        added before the reply started: a regenerate or an edit shows the chat first)."""
        row = self.streaming_row
        if row is None or model_id is None or self._rows[row].model_id is not None:
            return
        self._rows[row].model_id = model_id
        self._rows[row].version += 1
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, MessageRole.KEY])

    @property
    def streaming_row(self) -> int | None:
        """The row of the reply being written, if any."""
        if self._rows and self._rows[-1].streaming:
            return len(self._rows) - 1
        return None

    def append_reply_text(self, text: str) -> None:
        """Add streamed text to the reply being written: one row changes, nothing else."""
        row = self.streaming_row
        if row is None:
            self.begin_reply()
            row = len(self._rows) - 1
        item = self._rows[row]
        item.content += text
        item.version += 1
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, MessageRole.KEY])

    def _add_sources(self, rows: list[ChatRow]) -> None:
        if self.source_lookup is None:
            return
        found = self.source_lookup([r.message_id for r in rows
                                    if r.message_id is not None and r.role == Role.ASSISTANT])
        for row in rows:
            if row.message_id in found:
                row.sources = found[row.message_id]

    def finish_reply(self, message: Message | None,
                     alternatives: tuple[int, int] | None = None) -> None:
        """Replace the streamed row with the stored message (None: drop it)."""
        row = self.streaming_row
        if row is None:
            if message is not None:
                self._append(ChatRow.from_message(message, alternatives))
            return
        if message is None:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
            return
        stored = ChatRow.from_message(message, alternatives)
        stored.memory_start = message.id == self._memory_start
        self._add_sources([stored])
        self._rows[row] = stored
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, MessageRole.KEY])

    def end_reply(self) -> None:
        """Drop a reply row that never got stored (a failed generation)."""
        row = self.streaming_row
        if row is not None:
            self.finish_reply(None)

    # -- the model's memory ---------------------------------------------------------------
    @property
    def memory_start(self) -> int | None:
        """The message where the model's memory begins (None: it sees every message)."""
        return self._memory_start

    def set_memory_start(self, message_id: int | None) -> None:
        """Mark where the model's memory begins; the mark moves off its old row."""
        if message_id == self._memory_start:
            return
        self._memory_start = message_id
        for rows, shown in ((self._older, False), (self._rows, True)):
            for i, row in enumerate(rows):
                marked = row.message_id is not None and row.message_id == message_id
                if row.memory_start != marked:
                    row.memory_start = marked
                    if shown:  # the same text, one line taller or shorter
                        index = self.index(i)
                        self.dataChanged.emit(index, index, [MessageRole.MESSAGE])

    def row_at(self, row: int) -> ChatRow | None:
        """The row's data."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of_message(self, message_id: int) -> int | None:
        """The row showing this stored message, if it is shown."""
        return next((i for i, r in enumerate(self._rows) if r.message_id == message_id), None)
