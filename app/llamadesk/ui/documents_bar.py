"""Beside the composer: attach files to the next question (Attach…, or files
dropped on the chat) and switch document collections on and off for the chat on screen.
Thin: ``ChatDocuments`` (services) keeps the choices; this shows them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMenu, QToolButton, QWidget

from llamadesk.services.chat_documents import ChatDocuments


class DocumentsBar(QWidget):
    """The Attach… button, the Documents menu and what is attached.

    Signals:
        changed(): the attachments or the chat's collections changed.
    """

    changed = Signal()

    def __init__(self, documents: ChatDocuments, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.documents = documents
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
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.attach_button)
        layout.addWidget(self.collections_button)
        layout.addWidget(self.attached_label, 1)

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
        on = set(self.documents.collections(cid))
        for collection in collections:
            action = QAction(f"{collection.name} ({collection.files} files)", self.menu)
            action.setCheckable(True)
            action.setChecked(collection.name in on)
            action.toggled.connect(lambda checked, n=collection.name: self._toggle(n, checked))
            self.menu.addAction(action)

    def _toggle(self, name: str, checked: bool) -> None:
        if self.conversation_id is None:
            return
        names = [n for n in self.documents.collections(self.conversation_id) if n != name]
        self.documents.set_collections(self.conversation_id,
                                       [*names, name] if checked else names)
        self.refresh()
        self.changed.emit()
