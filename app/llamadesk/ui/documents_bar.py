"""Beside the composer: attach files to the next question (Attach…, or files
dropped on the chat), switch document collections on and off for the chat on screen,
update them (Documents ▸ Update), and see an update's progress with a Cancel button.
Thin: ``ChatDocuments`` (services) keeps the choices and ``DocumentIndexer`` indexes on
its own thread; this shows them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.documents.index import UpdateReport
from llamadesk.services.chat_documents import ChatDocuments
from llamadesk.services.doc_indexer import DocumentIndexer, IndexProgress
from llamadesk.ui.operations import Changes, Operations


class DocumentsBar(QWidget):
    """The Attach… button, the Documents menu and what is attached.

    Signals:
        changed(): the attachments or the chat's collections changed.
    """

    changed = Signal()

    def __init__(self, documents: ChatDocuments, indexer: DocumentIndexer,
                 ops: Operations, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.documents = documents
        self.indexer = indexer
        self.ops = ops  # a chat's collections are a write: the window's one error policy
        self.conversation_id: int | None = None
        self.attach_button = QToolButton()
        self.attach_button.setText("Attach…")  # words: an emoji font is not everywhere
        self.attach_button.setToolTip("Attach documents to the next message")
        self.attach_button.setAccessibleName("Attach documents")
        self.attach_button.clicked.connect(self._choose_files)
        self.collections_button = QToolButton()
        self.collections_button.setText("Documents")
        self.collections_button.setToolTip("Answer from your document collections")
        self.collections_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu = QMenu(self.collections_button)
        self.menu.aboutToShow.connect(self._fill_menu)
        self.collections_button.setMenu(self.menu)
        self.attached_label = QLabel()
        self.attached_label.setObjectName("attachedLabel")
        self.indexing = IndexingRow(indexer)
        self.indexing.ended.connect(self._on_indexed)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.attach_button)
        row.addWidget(self.collections_button)
        row.addWidget(self.attached_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.indexing)

    def update_collections(self) -> None:
        """Pick up changed, added and removed files of every collection (on the
        indexer's thread)."""
        self.indexer.update([c.name for c in self.documents.index.collections()])

    def show_conversation(self, conversation_id: int | None) -> None:
        """Show the choices of this chat."""
        self.conversation_id = conversation_id
        self.refresh()

    def attach(self, paths: list[Path]) -> None:
        """Attach files to the chat's next question."""
        if self.conversation_id is None or not paths:
            return
        self.documents.attach(self.conversation_id, paths)
        self.refresh()
        self.changed.emit()

    def refresh(self) -> None:
        """Show what is attached and which collections are on."""
        cid = self.conversation_id
        self.setEnabled(cid is not None)
        attached = self.documents.attached(cid) if cid is not None else []
        names = self.documents.collections(cid) if cid is not None else []
        self.collections_button.setText(f"Documents ({len(names)})" if names else "Documents")
        parts = [p.name for p in attached]
        self.attached_label.setText(("Attached: " + ", ".join(parts)) if parts else "")
        self.attached_label.setToolTip("\n".join(str(p) for p in attached))

    def _choose_files(self) -> None:
        from llamadesk.core.documents.parsers import SUPPORTED_SUFFIXES

        kinds = " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(self, "Attach documents", "",
                                                f"Documents ({kinds});;All files (*)")
        self.attach([Path(f) for f in files])

    def _fill_menu(self) -> None:
        self.menu.clear()
        cid = self.conversation_id
        collections = self.documents.index.collections()
        if cid is None or not collections:
            empty = self.menu.addAction("No collections yet (llamadesk docs add)")
            empty.setEnabled(False)
            return
        update = self.menu.addAction("Update (pick up changed files)")
        update.setEnabled(not self.indexer.running)
        update.triggered.connect(self.update_collections)
        self.menu.addSeparator()
        on = set(self.documents.collections(cid))
        for collection in collections:
            action = QAction(f"{collection.name} ({collection.files} files)", self.menu)
            action.setCheckable(True)
            action.setChecked(collection.name in on)
            action.toggled.connect(lambda checked, n=collection.name: self._toggle(n, checked))
            self.menu.addAction(action)

    @Slot()
    def _on_indexed(self) -> None:
        self.refresh()
        self.changed.emit()

    def _toggle(self, name: str, checked: bool) -> None:
        if self.conversation_id is None:
            return
        cid = self.conversation_id
        names = [n for n in self.documents.collections(cid) if n != name]
        chosen = [*names, name] if checked else names
        self.ops.run(lambda: self.documents.set_collections(cid, chosen),
                     Changes(chats=frozenset({cid})), initiator=self,
                     success=lambda _done: self._toggled())

    def _toggled(self) -> None:
        self.refresh()
        self.changed.emit()


class IndexingRow(QWidget):
    """A collection's update as it runs: a bar of files done, the files, pages and time
    left in words, and Cancel. Hidden while nothing is indexed.

    Signals:
        ended(): the updates asked for are all done (or cancelled, or failed).
    """

    ended = Signal()

    def __init__(self, indexer: DocumentIndexer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.indexer = indexer
        self.bar = QProgressBar()
        self.bar.setAccessibleName("Indexing progress")
        self.label = QLabel()
        self.label.setObjectName("indexingLabel")
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop indexing (what is indexed so far is kept)")
        self.cancel_button.setAccessibleName("Cancel indexing")
        self.cancel_button.clicked.connect(indexer.cancel)
        #: What the last update said when it ended (also shown until the next one).
        self.outcome = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label, 2)
        layout.addWidget(self.cancel_button)
        indexer.progressed.connect(self._on_progressed)
        indexer.finished.connect(self._on_finished)
        indexer.failed.connect(self._on_failed)
        indexer.idle.connect(self._on_idle)
        self.hide()

    @Slot(object)
    def _on_progressed(self, progress: IndexProgress) -> None:
        self.show()
        self.cancel_button.setEnabled(True)
        self.bar.setRange(0, max(progress.files_total, 1))
        self.bar.setValue(progress.files_done)
        if progress.waiting:
            left = "waiting for the reply"
        elif progress.seconds_left is None:
            left = "estimating the time left"
        else:
            left = f"about {_duration(progress.seconds_left)} left"
        self.label.setText(f"Indexing {progress.collection}: {progress.files_done} of "
                           f"{progress.files_total} files, {progress.pages} pages, {left}")

    @Slot(str, object)
    def _on_finished(self, name: str, report: UpdateReport) -> None:
        self.bar.setValue(self.bar.maximum())
        state = "cancelled" if report.cancelled else "indexed"
        skipped = f", {len(report.failed)} skipped" if report.failed else ""
        self.outcome = (f"{name} {state}: {len(report.added)} added, "
                        f"{len(report.changed)} changed, {len(report.removed)} removed"
                        f"{skipped}")
        self.label.setText(self.outcome)

    @Slot(str, str)
    def _on_failed(self, name: str, reason: str) -> None:
        self.outcome = f"{name} could not be indexed: {reason}"
        self.label.setText(self.outcome)

    @Slot()
    def _on_idle(self) -> None:
        self.cancel_button.setEnabled(False)
        self.hide()
        self.ended.emit()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"
