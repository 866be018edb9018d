"""The model manager's "Search the Hub" tab: GGUF repositories matching a query, and a
chosen repository's files with their quantisation, size and fit label."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.downloads import DownloadRequest
from llamadesk.core.fit import FitEstimate, ModelShape
from llamadesk.core.hub import GGUFChoice, HubErrorKind, HubRepo
from llamadesk.core.units import format_bytes
from llamadesk.services.hub_queries import HubQueryService
from llamadesk.ui.model_lists import DataRole, make_tree, set_fit

#: (size, shape, trained context) → the fit estimate, or None when the size is unknown.
FitFor = Callable[[int | None, ModelShape | None, int | None], FitEstimate | None]


class HubSearchPanel(QWidget):
    """Search the Hub through the query service; only the latest answer is shown.

    Signals:
        download_requested(DownloadRequest): the user asked for a file.
        message(str): something to tell the user in the page's status line.
    """

    download_requested = Signal(object)
    message = Signal(str)

    def __init__(self, queries: HubQueryService, catalog: ModelCatalog, fit_for: FitFor,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queries = queries
        self.catalog = catalog
        self._fit_for = fit_for
        self._search_id = 0
        self._files_id = 0
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search GGUF models on Hugging Face (e.g. llama 2)")
        self.search_box.returnPressed.connect(self._search_clicked)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self._search_clicked)
        row = QHBoxLayout()
        row.addWidget(self.search_box)
        row.addWidget(self.search_button)
        self.repo_list = make_tree(["Repository", "Downloads", "Access"])
        self.repo_list.currentItemChanged.connect(self._repo_selected)
        self.file_list = make_tree(["File", "Quantisation", "Size", "Fit"])
        self.file_list.itemDoubleClicked.connect(lambda *_: self._download_clicked())
        self.file_download = QPushButton("Download")
        self.file_download.clicked.connect(self._download_clicked)
        lists = QSplitter(Qt.Orientation.Horizontal)
        lists.addWidget(self.repo_list)
        lists.addWidget(self.file_list)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(lists)
        layout.addWidget(self.file_download, alignment=Qt.AlignmentFlag.AlignLeft)

        queries.search_finished.connect(self._on_search_finished)
        queries.search_failed.connect(self._on_search_failed)
        queries.files_listed.connect(self._on_files_listed)
        queries.files_failed.connect(self._on_files_failed)

    @Slot()
    def _search_clicked(self) -> None:
        query = self.search_box.text().strip()
        self.repo_list.clear()
        self.file_list.clear()
        self.message.emit(f"Searching the Hub for {query!r}…")
        self._search_id = self.queries.search(query)

    @Slot(int, object)
    def _on_search_finished(self, request_id: int, repos: list[HubRepo]) -> None:
        if request_id != self._search_id:
            return  # an older search answered late
        for repo in repos:
            item = QTreeWidgetItem([repo.id, f"{repo.downloads:,}",
                                    "gated" if repo.gated else "open"])
            item.setData(0, DataRole, repo.id)
            self.repo_list.addTopLevelItem(item)
        self.message.emit(f"{len(repos)} repositories found." if repos else "Nothing found.")

    @Slot(int, str, object)
    def _on_search_failed(self, request_id: int, reason: str, _kind: HubErrorKind) -> None:
        if request_id == self._search_id:
            self.message.emit(reason)

    @Slot()
    def _repo_selected(self) -> None:
        item = self.repo_list.currentItem()
        if item is None:
            return
        self.file_list.clear()
        self._files_id = self.queries.list_files(str(item.data(0, DataRole)))

    @Slot(int, str, object)
    def _on_files_listed(self, request_id: int, repo: str, choices: list[GGUFChoice]) -> None:
        if request_id != self._files_id:
            return
        entry = self.catalog.for_repo(repo)
        shape = ModelShape.from_hint(entry.architecture) if entry else None
        for choice in choices:
            size = format_bytes(choice.size) if choice.size is not None else "?"
            item = QTreeWidgetItem([choice.name, choice.quant or "?", size, ""])
            item.setData(0, DataRole, choice)
            if choice.refusal:
                item.setText(3, "split: not downloadable")
                item.setToolTip(3, choice.refusal)
            else:
                set_fit(item, 3, self._fit_for(choice.size, shape,
                                               entry.context_length if entry else None))
            self.file_list.addTopLevelItem(item)
        self.message.emit(f"{repo}: {len(choices)} GGUF models." if choices else
                          f"{repo} holds no GGUF files.")

    @Slot(int, str, str, object)
    def _on_files_failed(self, request_id: int, _repo: str, reason: str,
                         _kind: HubErrorKind) -> None:
        if request_id == self._files_id:
            self.message.emit(reason)

    @Slot()
    def _download_clicked(self) -> None:
        item = self.file_list.currentItem()
        if item is None:
            return
        choice: GGUFChoice = item.data(0, DataRole)
        if choice.refusal:
            self.message.emit(choice.refusal)
            return
        self.download_requested.emit(DownloadRequest(choice.repo, choice.filename))
