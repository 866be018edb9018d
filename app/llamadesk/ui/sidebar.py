"""The sidebar: the list of conversations, a New chat button and search across chats."""

from __future__ import annotations

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.conversation import Conversation
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.ui.conversation_list import ConversationIdRole, ConversationListModel
from llamadesk.ui.operations import Changes, Operations
from llamadesk.ui.search import ResultConversationRole, ResultMessageRole, SearchResultListModel

SEARCH_DELAY_MS = 150


class ElidedTitleDelegate(QStyledItemDelegate):
    """Rows as wide as the list, whatever their text: a long title ends in "…" instead
    of making the list scroll sideways (a list view gives every row the widest row's
    width otherwise)."""

    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(1, super().sizeHint(option, index).height())


class ConversationSidebar(QWidget):
    """Conversations, newest first (paged from the store), and search across them:
    typing in the search box swaps the list for the matching messages. The list follows
    ``ops``'s change event (a chat made, renamed, deleted, or with new messages).

    Signals:
        conversation_selected(int): the user (or ``select()``) made this chat current.
        new_chat_requested(): the New chat button was pressed.
        delete_requested(): "Delete…" was chosen from a chat's context menu.
        search_hit_opened(int, int): a search result was opened: its conversation and
            message (which may be on another branch than the one on screen).
        problem(str): something the user should read (a search the database refused).
    """

    conversation_selected = Signal(int)
    new_chat_requested = Signal()
    delete_requested = Signal()
    search_hit_opened = Signal(int, int)
    problem = Signal(str)

    def __init__(self, store: ConversationStore, ops: Operations,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.conversations = ConversationListModel(store, self, ops)
        ops.changed.connect(self._on_changes)
        self.list_view = self._make_list_view()
        new_button = QPushButton("+  New chat")
        new_button.setAccessibleName("New chat")
        new_button.setToolTip("Start a new conversation (Ctrl+N)")
        new_button.clicked.connect(self.new_chat_requested)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search all chats (Ctrl+F)")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setAccessibleName("Search chats")
        self.search_results = SearchResultListModel(store, self)
        self.results_view = QListView()
        self.results_view.setModel(self.search_results)
        self.results_view.setAccessibleName("Search results")
        self.results_view.setWordWrap(True)
        self.results_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results_view.setAlternatingRowColors(True)
        self.results_view.activated.connect(self._open_result)
        self.results_view.clicked.connect(self._open_result)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._run_search)
        self.search_box.textChanged.connect(self._search_soon)
        self.search_box.returnPressed.connect(self._run_search)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.list_view)
        self.stack.addWidget(self.results_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        layout.addWidget(new_button)
        layout.addWidget(self.search_box)
        layout.addWidget(self.stack, 1)

    def _make_list_view(self) -> QListView:
        view = QListView()
        view.setModel(self.conversations)
        view.setAccessibleName("Conversations")
        view.setItemDelegate(ElidedTitleDelegate(view))
        view.setUniformItemSizes(True)  # one row's height for all: fast with many chats
        view.setTextElideMode(Qt.TextElideMode.ElideRight)
        view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed
                             | QAbstractItemView.EditTrigger.DoubleClicked)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._context_menu)
        view.selectionModel().currentChanged.connect(self._on_current_changed)
        return view

    # -- the list ---------------------------------------------------------------------------
    def select(self, conversation_id: int) -> None:
        """Make a chat current (listing it first if its page is not loaded yet)."""
        row = self.conversations.row_of(conversation_id)
        if row is None:
            conversation = self._store.get_conversation(conversation_id)
            if conversation is None:
                return
            self.conversations.upsert(conversation)
            row = 0
        index = self.conversations.index(row)
        self.list_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.list_view.scrollTo(index)

    @Slot(object, object)
    def _on_changes(self, changes: Changes, initiator: object) -> None:
        lst = self.conversations
        for conversation_id in changes.deleted_chats:
            lst.remove(conversation_id)
        changed = changes.messages | changes.chats
        if initiator is lst:  # a rename in place has updated its own row
            changed = changes.messages
        for conversation_id in changed - changes.deleted_chats:
            lst.refresh(conversation_id)

    def first_conversation(self) -> Conversation | None:
        """The newest chat listed, if any."""
        return self.conversations.conversation_at(0)

    def rename_current(self) -> None:
        """Edit the current chat's title in place."""
        index = self.list_view.currentIndex()
        if index.isValid():
            self.list_view.edit(index)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        conversation_id = current.data(ConversationIdRole) if current.isValid() else None
        if conversation_id is not None:
            self.conversation_selected.emit(int(conversation_id))

    @Slot(QPoint)
    def _context_menu(self, pos: QPoint) -> None:
        index = self.list_view.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list_view.edit(index))
        menu.addAction("Delete…", self.delete_requested.emit)
        menu.exec(self.list_view.viewport().mapToGlobal(pos))

    # -- search -----------------------------------------------------------------------------
    def focus_search(self) -> None:
        """Put the cursor in the search box."""
        self.search_box.setFocus()
        self.search_box.selectAll()

    @Slot(str)
    def _search_soon(self, _text: str) -> None:
        self._search_timer.start()

    @Slot()
    def _run_search(self) -> None:
        self._search_timer.stop()
        query = self.search_box.text().strip()
        if not query:
            self.stack.setCurrentWidget(self.list_view)
            return
        try:
            self.search_results.search(query)
        except StoreError as exc:
            self.problem.emit(str(exc))
            return
        self.stack.setCurrentWidget(self.results_view)

    @Slot(QModelIndex)
    def _open_result(self, index: QModelIndex) -> None:
        conversation_id = index.data(ResultConversationRole)
        message_id = index.data(ResultMessageRole)
        if conversation_id is not None and message_id is not None:
            self.search_hit_opened.emit(int(conversation_id), int(message_id))
