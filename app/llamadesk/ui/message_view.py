"""The chat view: a list view whose delegate paints each message from a cached
QTextDocument (Markdown), so scrolling and streaming never re-render the whole chat."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QFont,
    QGuiApplication,
    QKeySequence,
    QPainter,
    QPalette,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from llamadesk.core.conversation import FinishReason, Role
from llamadesk.ui.message_model import ChatRow, MessageListModel, MessageRole
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.theme import is_dark

MARGIN = 12  # around each bubble
PADDING = 10  # inside each bubble
MAX_TEXT_WIDTH = 760
HEADER_GAP = 4
CACHE_SIZE = 400
MEMORY_MARKER = "Earlier messages are beyond this model's memory"

_Index = QModelIndex | QPersistentModelIndex




def header_text(row: ChatRow, names: ModelNames) -> str:
    """The small line above a message: who wrote it, and how fast."""
    versions = (f"version {row.alternatives[0]} of {row.alternatives[1]}"
                if row.alternatives else None)
    if row.role == Role.USER:
        return f"You · {versions}" if versions else "You"
    parts = [names.name_of(row.model_id)]
    if versions:
        parts.append(versions)
    stats = row.stats
    if row.streaming:
        parts.append("writing…")
    elif stats is not None:
        if stats.tokens_per_s:
            parts.append(f"{stats.tokens_per_s:.1f} tokens/s")
        if stats.completion_tokens:
            parts.append(f"{stats.completion_tokens} tokens")
        if stats.finish_reason == FinishReason.STOPPED:
            parts.append("stopped")
        elif stats.finish_reason == FinishReason.INTERRUPTED:
            parts.append(f"interrupted: {stats.finish_detail or 'the app closed while writing'}")
        elif stats.finish_reason == FinishReason.LENGTH:
            parts.append("cut at the token limit")
        if stats.finish_detail and stats.finish_reason != FinishReason.INTERRUPTED:
            parts.append(stats.finish_detail)  # how it was written (a remote server's limits)
    return " · ".join(parts)


class MessageDelegate(QStyledItemDelegate):
    """Paints messages as bubbles; keeps rendered documents in a small LRU cache."""

    def __init__(self, names: ModelNames, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._names = names
        self._docs: OrderedDict[tuple[object, ...], QTextDocument] = OrderedDict()
        self._live_doc: QTextDocument | None = None
        self._live_row: ChatRow | None = None
        self._live_len = 0
        self.dark = False  # Markdown colours for a dark palette
        self.font = QFont()
        self._origins: dict[tuple[object, int], QPoint] = {}
        #: Stored rows' heights by (key, view width, memory mark): QListView lays every
        #: row out again when one is added or grows, so a row's size is asked for ~60
        #: times per send in a long chat, and each answer crossed into Python and the
        #: document (a full layout 1.4 ms of GUI CPU).
        self._sizes: OrderedDict[tuple[object, ...], QSize] = OrderedDict()

    def set_appearance(self, font: QFont, dark: bool) -> None:
        """The view's font or palette changed: render every message again."""
        self.font, self.dark = QFont(font), dark
        self._docs.clear()
        self._sizes.clear()
        self._live_doc = self._live_row = None

    def text_origin(self, row: ChatRow) -> QPoint | None:
        """Where ``row``'s document was last painted, from the row's top left: what a
        click on a link is hit-tested against (``message_links.py``)."""
        return self._origins.get(row.key)

    def _text_width(self, row: ChatRow, view_width: int) -> int:
        width = min(view_width - 2 * MARGIN - 2 * PADDING, MAX_TEXT_WIDTH)
        if row.role == Role.USER:
            width = int(width * 0.85)
        return max(width, 80)

    def document(self, row: ChatRow, view_width: int) -> QTextDocument:
        """The laid-out document for ``row`` at this view width (cached)."""
        width = self._text_width(row, view_width)
        if row.streaming:
            return self._live_document(row, width)
        key = (*row.key, width)
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
            return doc
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultFont(self.font)
        if row.role == Role.USER:
            doc.setPlainText(row.content)
        else:
            # Imported with the first reply shown: an empty window never needs it.
            from llamadesk.ui.markdown import STYLE_SHEET, sources_html, to_html

            doc.setDefaultStyleSheet(STYLE_SHEET)
            sources = sources_html([p.where for p in row.sources], self.dark) \
                if row.sources else ""
            doc.setHtml(to_html(row.content, self.dark) + sources)
        doc.setTextWidth(width)
        self._docs[key] = doc
        while len(self._docs) > CACHE_SIZE:
            self._docs.popitem(last=False)
        return doc

    def _live_document(self, row: ChatRow, width: int) -> QTextDocument:
        # The reply being written grows by appending plain text at the end, so each
        # batch costs the same however long the reply already is; it is rendered as
        # Markdown once, when it is stored.
        doc = self._live_doc
        if doc is None or self._live_row is not row or len(row.content) < self._live_len:
            doc = QTextDocument()
            doc.setDocumentMargin(0)
            doc.setDefaultFont(self.font)
            doc.setPlainText(row.content)
            self._live_doc, self._live_row = doc, row
            from llamadesk.ui.markdown_prepare import prepare_markdown  # with a reply only

            prepare_markdown()
        elif len(row.content) > self._live_len:
            cursor = QTextCursor(doc)
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(row.content[self._live_len:])
        self._live_len = len(row.content)
        if doc.textWidth() != width:
            doc.setTextWidth(width)
        return doc

    def _header_height(self, option: QStyleOptionViewItem) -> int:
        return int(option.fontMetrics.height() * 0.9) + HEADER_GAP

    def _view_width(self, option: QStyleOptionViewItem) -> int:
        widget = option.widget  # type: ignore[attr-defined]
        if isinstance(widget, QAbstractItemView):
            return int(widget.viewport().width())
        return int(option.rect.width())  # type: ignore[attr-defined]

    @staticmethod
    def _visible(option: QStyleOptionViewItem) -> QRect | None:
        """The part of the view on screen, in the coordinates rows are painted in."""
        widget = option.widget  # type: ignore[attr-defined]
        if isinstance(widget, QAbstractItemView):
            return QRect(widget.viewport().rect())
        return None

    def _marker_height(self, option: QStyleOptionViewItem, row: ChatRow) -> int:
        return option.fontMetrics.height() + MARGIN if row.memory_start else 0

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        row = index.data(MessageRole.MESSAGE)
        if not isinstance(row, ChatRow):
            return QSize(0, 0)
        view_width = self._view_width(option)
        key = (*row.key, view_width, row.memory_start)
        size = None if row.streaming else self._sizes.get(key)
        if size is not None:
            return size
        doc = self.document(row, view_width)
        height = (int(doc.size().height()) + 2 * PADDING + self._header_height(option) + MARGIN
                  + self._marker_height(option, row))
        size = QSize(view_width, height)
        if not row.streaming:  # the live row changes with every batch
            self._sizes[key] = size
            while len(self._sizes) > CACHE_SIZE:
                self._sizes.popitem(last=False)
        return size

    def _paint_memory_marker(self, painter: QPainter, option: QStyleOptionViewItem,
                             rect: QRect, height: int) -> None:
        """A quiet rule with a caption: the messages above it are beyond the model's
        memory (the chat outgrew the context)."""
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        font = option.font  # type: ignore[attr-defined]
        font.setPointSizeF(max(font.pointSizeF() * 0.85, 6.0))
        color = QColor(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.save()
        painter.setFont(font)
        painter.setPen(color)
        band = QRect(rect.left() + MARGIN, rect.top(), rect.width() - 2 * MARGIN, height)
        text_w = painter.fontMetrics().horizontalAdvance(MEMORY_MARKER) + 2 * PADDING
        middle = band.center().y()
        color.setAlpha(90)
        painter.setPen(color)
        gap_left = band.center().x() - text_w // 2
        painter.drawLine(band.left(), middle, gap_left, middle)
        painter.drawLine(gap_left + text_w, middle, band.right(), middle)
        color.setAlpha(255)
        painter.setPen(color)
        painter.drawText(band, int(Qt.AlignmentFlag.AlignCenter), MEMORY_MARKER)
        painter.restore()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        row = index.data(MessageRole.MESSAGE)
        if not isinstance(row, ChatRow):
            return
        rect: QRect = option.rect  # type: ignore[attr-defined]
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        marker = self._marker_height(option, row)
        if marker:
            self._paint_memory_marker(painter, option, rect, marker)
            rect = rect.adjusted(0, marker, 0, 0)
        doc = self.document(row, self._view_width(option))
        header_h = self._header_height(option)
        header = header_text(row, self._names)
        if row.role == Role.USER:
            bubble_w = int(doc.idealWidth()) + 2 * PADDING
            bubble_w = max(bubble_w, option.fontMetrics.horizontalAdvance(header)
                           + 2 * PADDING)
        else:
            # Replies take the full text width: code blocks and tables paint their
            # backgrounds across it, beyond the text's ideal width.
            bubble_w = int(doc.textWidth()) + 2 * PADDING
        bubble_w = min(bubble_w, rect.width() - 2 * MARGIN)
        bubble_h = int(doc.size().height()) + 2 * PADDING
        top = rect.top() + MARGIN // 2 + header_h
        if row.role == Role.USER:
            left = rect.right() - MARGIN - bubble_w
            fill = QColor(palette.color(QPalette.ColorRole.Highlight))
            fill.setAlpha(45)
        else:
            left = rect.left() + MARGIN
            fill = QColor(palette.color(QPalette.ColorRole.AlternateBase))
        bubble = QRect(left, top, bubble_w, bubble_h)
        visible = self._visible(option)

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        if selected:
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
        else:
            painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRoundedRect(_on_screen(bubble, visible), 10, 10)
        # Header: who wrote it, and how fast.
        header_font = option.font  # type: ignore[attr-defined]
        header_font.setPointSizeF(max(header_font.pointSizeF() * 0.85, 6.0))
        painter.setFont(header_font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        header_rect = QRect(left + 4, rect.top() + MARGIN // 2, rect.width() - 2 * MARGIN,
                            header_h)
        align = Qt.AlignmentFlag.AlignRight if row.role == Role.USER else Qt.AlignmentFlag.AlignLeft
        if row.role == Role.USER:
            header_rect = QRect(rect.left() + MARGIN, rect.top() + MARGIN // 2,
                                rect.width() - 2 * MARGIN - 4, header_h)
        painter.drawText(header_rect, int(align | Qt.AlignmentFlag.AlignTop), header)
        # Body.
        painter.translate(QPoint(left + PADDING, top + PADDING))
        if len(self._origins) > CACHE_SIZE:
            self._origins.clear()  # rows on screen are painted, so noted, again at once
        row_top_left: QPoint = option.rect.topLeft()  # type: ignore[attr-defined]
        self._origins[row.key] = QPoint(left + PADDING, top + PADDING) - row_top_left
        context = QAbstractTextDocumentLayout.PaintContext()
        context.palette.setColor(QPalette.ColorRole.Text,
                                 palette.color(QPalette.ColorRole.Text))
        if visible is not None:  # lay out every line, but draw only those on screen
            context.clip = visible.translated(-(left + PADDING), -(top + PADDING)).toRectF()
        doc.documentLayout().draw(painter, context)
        painter.restore()


def _on_screen(bubble: QRect, visible: QRect | None) -> QRect:
    """The bubble cut to what is on screen, plus more than a corner's radius, so the
    corners that show are where they were. A reply taller than the view is one
    antialiased shape as tall as the reply: filling it whole cost more than its text."""
    if visible is None:
        return bubble
    top = max(bubble.top(), visible.top() - 2 * MARGIN)
    bottom = min(bubble.bottom(), visible.bottom() + 2 * MARGIN)
    return QRect(bubble.left(), top, bubble.width(), max(bottom - top + 1, 0))


class MessageView(QListView):
    """Shows a MessageListModel; follows the newest text while the user is at the
    bottom, and loads older messages when they scroll to the top.

    Signals:
        regenerate_requested(int): a new version of this reply, please.
        edit_requested(int): the user wants to edit this message.
        version_requested(int, int): show the version of this message that is this many
            steps away (-1 the previous, +1 the next).
        menu_about_to_show(QMenu, ChatRow): a message's context menu is about to open;
            receivers may add their own actions to it.
    """

    regenerate_requested = Signal(int)
    edit_requested = Signal(int)
    version_requested = Signal(int, int)
    menu_about_to_show = Signal(object, object)

    def __init__(self, names: ModelNames, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._delegate = MessageDelegate(names, self)
        self.setItemDelegate(self._delegate)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setUniformItemSizes(False)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.setAccessibleName("Messages")
        self._delegate.set_appearance(self.font(), is_dark(self.palette()))
        self._stick_to_bottom = True
        self._live_height = -1
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)

    def setModel(self, model: object) -> None:
        """Attach a MessageListModel."""
        super().setModel(model)  # type: ignore[arg-type]
        if isinstance(model, MessageListModel):
            model.modelReset.connect(self._on_reset)

    def message_model(self) -> MessageListModel:
        """The attached model."""
        model = self.model()
        assert isinstance(model, MessageListModel)
        return model

    # -- following the newest text --------------------------------------------------------
    def dataChanged(self, top_left: QModelIndex, bottom_right: QModelIndex,
                    roles: list[int] | None = None) -> None:
        """The reply being written changed. QListView repaints the whole viewport on
        any dataChanged; for the live row we repaint that row alone, and lay the list
        out again only when it grew a line (then the view follows the newest text)."""
        if top_left == bottom_right and top_left.data(MessageRole.STREAMING):
            height = self.sizeHintForIndex(top_left).height()
            if height == self._live_height:
                self.update(top_left)
                return
            self._live_height = height
        else:
            self._live_height = -1
        super().dataChanged(top_left, bottom_right, roles or [])
        self._delegate.sizeHintChanged.emit(top_left)

    def _on_reset(self) -> None:
        self._stick_to_bottom = True

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._stick_to_bottom:
            self.verticalScrollBar().setValue(maximum)

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 4
        if value == bar.minimum() and bar.maximum() > 0:
            self._load_older()

    def _load_older(self) -> None:
        model = self.model()
        if not isinstance(model, MessageListModel) or not model.has_older:
            return
        bar = self.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        if model.load_older():
            self.doItemsLayout()
            bar.setValue(bar.maximum() - from_bottom)

    EMPTY_TEXT = ("Ask anything. Your chats stay on this computer: nothing is sent "
                  "anywhere.\n\nEnter sends, Shift+Enter starts a new line, Esc stops "
                  "an answer.")

    def paintEvent(self, event: object) -> None:
        """An empty chat says how to start, instead of a blank page."""
        super().paintEvent(event)  # type: ignore[arg-type]
        model = self.model()
        if model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            area = self.viewport().rect().adjusted(60, 0, -60, 0)
            painter.drawText(area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                             self.EMPTY_TEXT)
            painter.end()

    def scroll_to_end(self) -> None:
        """Show the newest message and follow new text again."""
        self._stick_to_bottom = True
        self.scrollToBottom()

    def follow_end(self) -> None:
        """As ``scroll_to_end``, once the rows just added are laid out: scrolling at once
        lays the whole list out on the spot (1.4-1.8 ms of GUI CPU in the 1,000-message
        chat), and Qt lays it out again for the same rows in the next turn."""
        self._stick_to_bottom = True
        QTimer.singleShot(0, self, self._scroll_if_following)

    def _scroll_if_following(self) -> None:
        if self._stick_to_bottom:  # the user may have scrolled up meanwhile
            self.scrollToBottom()

    def changeEvent(self, event: QEvent) -> None:
        """A new palette (a theme switch) or font (the text size): render again."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.FontChange):
            self._delegate.set_appearance(self.font(), is_dark(self.palette()))
            self.scheduleDelayedItemsLayout()

    def selected_row(self) -> ChatRow | None:
        """The message the user selected (clicked, or moved to with the keys)."""
        row = self.currentIndex().data(MessageRole.MESSAGE)
        return row if isinstance(row, ChatRow) else None

    def resizeEvent(self, event: object) -> None:
        """Widths changed: documents are re-laid out lazily (the cache keys on width)."""
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self._stick_to_bottom:
            self.scrollToBottom()

    # -- copying ------------------------------------------------------------------------
    def _context_menu(self, pos: QPoint) -> None:
        index = self.indexAt(pos)
        row = index.data(MessageRole.MESSAGE) if index.isValid() else None
        if not isinstance(row, ChatRow):
            return
        menu = QMenu(self)
        menu.addAction("Copy text", lambda: self._copy(row))
        message_id = row.message_id
        if message_id is not None and not row.streaming:
            if row.role == Role.ASSISTANT:
                menu.addAction("Regenerate (keeps this version)",
                               lambda: self.regenerate_requested.emit(message_id))
            elif row.role == Role.USER:
                menu.addAction("Edit… (keeps this version)",
                               lambda: self.edit_requested.emit(message_id))
            if row.alternatives:
                here, count = row.alternatives
                previous = menu.addAction("Previous version",
                                          lambda: self.version_requested.emit(message_id, -1))
                previous.setEnabled(here > 1)
                following = menu.addAction("Next version",
                                           lambda: self.version_requested.emit(message_id, 1))
                following.setEnabled(here < count)
        self.menu_about_to_show.emit(menu, row)
        menu.exec(self.viewport().mapToGlobal(pos))

    def _copy(self, row: ChatRow) -> None:
        QGuiApplication.clipboard().setText(row.content)

    def keyPressEvent(self, event: object) -> None:
        """Ctrl+C copies the selected message."""
        from PySide6.QtGui import QKeyEvent

        if isinstance(event, QKeyEvent) and event.matches(QKeySequence.StandardKey.Copy):
            row = self.currentIndex().data(MessageRole.MESSAGE)
            if isinstance(row, ChatRow):
                self._copy(row)
                return
        super().keyPressEvent(event)  # type: ignore[arg-type]
