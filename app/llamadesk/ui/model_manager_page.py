"""The model manager page ("Models"): installed models, the curated catalog, Hub search,
and downloads.

Thin: it shows what the registry, the catalog and the Hub query service say, and hands
downloads and imports to the download service. Every file it offers carries its
quantisation, size and a fit label; downloads show progress, speed and time left and can
be paused, resumed and cancelled. A licence that must be accepted is asked for before
the first download under it; a gated repo asks for a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.catalog import CatalogEntry, Licence, ModelCatalog
from llamadesk.core.downloads import DownloadErrorKind, DownloadRequest
from llamadesk.core.fit import FitEstimate, MemoryBudget, ModelShape, estimate_fit
from llamadesk.core.hub import GGUFChoice, HubErrorKind, HubRepo
from llamadesk.core.licences import LicenceAcceptances, acceptance_text
from llamadesk.core.registry import ModelEntry, ModelRegistry, ModelSource, RegistryError
from llamadesk.core.secrets import InvalidTokenError, SecretStore
from llamadesk.core.settings import AppSettings
from llamadesk.core.units import format_bytes, format_duration, format_speed
from llamadesk.services.downloads import DownloadService, ImportRequest
from llamadesk.services.fit_check import memory_budget
from llamadesk.services.hub_queries import HubQueryService

log = logging.getLogger(__name__)

DataRole = Qt.ItemDataRole.UserRole


@dataclass
class _DownloadRow:
    request: DownloadRequest | ImportRequest
    item: QTreeWidgetItem
    bar: QProgressBar
    state: str = "queued"


class LicenceDialog(QDialog):
    """Shows a model's licence and acceptable-use policy and asks the user to accept."""

    def __init__(self, licence: Licence, model_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Licence of {model_name}")
        text = QLabel(acceptance_text(licence).replace("\n", "<br>"))
        text.setTextFormat(Qt.TextFormat.RichText)
        text.setOpenExternalLinks(True)
        text.setWordWrap(True)
        links = QLabel(f'<a href="{licence.url}">Read the licence</a>'
                       + (f' · <a href="{licence.acceptable_use_url}">acceptable-use policy</a>'
                          if licence.acceptable_use_url else ""))
        links.setOpenExternalLinks(True)
        self.confirm = QCheckBox("I have read the licence and will follow it")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.accept_button = buttons.addButton("Accept and download",
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        self.accept_button.setEnabled(False)
        self.confirm.toggled.connect(self.accept_button.setEnabled)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (text, links, self.confirm, buttons):
            layout.addWidget(widget)


class ModelManagerPage(QWidget):
    """Browse, download, import and remove models.

    Signals:
        models_changed(): the installed models changed (a download or import finished,
            or a model was removed); the chat header's model picker should refresh.
    """

    models_changed = Signal()

    def __init__(
        self,
        downloads: DownloadService,
        queries: HubQueryService,
        registry: ModelRegistry,
        catalog: ModelCatalog,
        licences: LicenceAcceptances,
        secrets: SecretStore,
        *,
        n_ctx: int = 4096,
        budget: Callable[[], MemoryBudget] | None = None,
        settings: Callable[[], AppSettings] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.downloads = downloads
        self.queries = queries
        self.registry = registry
        self.catalog = catalog
        self.licences = licences
        self.secrets = secrets
        self.n_ctx = n_ctx
        self._budget = (budget or memory_budget)()
        self._settings = settings or AppSettings
        self._rows: dict[str, _DownloadRow] = {}
        self._search_id = 0
        self._files_id = 0

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_installed(), "Installed")
        self.tabs.addTab(self._build_catalog(), "Catalog")
        self.tabs.addTab(self._build_search(), "Search the Hub")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self._build_downloads())
        splitter.setStretchFactor(0, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        layout.addWidget(self.status)

        d = self.downloads
        d.download_queued.connect(self._on_queued)
        d.download_started.connect(self._on_started)
        d.download_progressed.connect(self._on_progressed)
        d.download_finished.connect(self._on_finished)
        d.download_paused.connect(self._on_paused)
        d.download_cancelled.connect(self._on_cancelled)
        d.download_failed.connect(self._on_failed)
        q = self.queries
        q.search_finished.connect(self._on_search_finished)
        q.search_failed.connect(self._on_search_failed)
        q.files_listed.connect(self._on_files_listed)
        q.files_failed.connect(self._on_files_failed)

        self.refresh_installed()
        self._fill_catalog()
        self._offer_partials()

    # -- building ---------------------------------------------------------------
    @staticmethod
    def _tree(headers: list[str]) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setHeaderLabels(headers)
        tree.setRootIsDecorated(False)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # The other columns (size, fit, licence…) fit their contents, so nothing is cut.
        for column in range(1, len(headers)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        return tree

    def _build_installed(self) -> QWidget:
        self.installed = self._tree(["Model", "Quantisation", "Size", "Source", "Fit"])
        self.import_button = QPushButton("Import a .gguf file…")
        self.import_button.clicked.connect(self._import_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_clicked)
        self.show_button = QPushButton("Show in folder")
        self.show_button.clicked.connect(self._show_clicked)
        buttons = QHBoxLayout()
        for button in (self.import_button, self.remove_button, self.show_button):
            buttons.addWidget(button)
        buttons.addStretch()
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.installed)
        layout.addLayout(buttons)
        return page

    def _build_catalog(self) -> QWidget:
        self.catalog_tree = self._tree(["Model", "Size", "Fit", "Licence"])
        self.catalog_tree.setRootIsDecorated(True)
        self.catalog_tree.currentItemChanged.connect(self._catalog_selected)
        self.catalog_tree.itemDoubleClicked.connect(lambda *_: self._download_catalog_clicked())
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.catalog_download = QPushButton("Download")
        self.catalog_download.clicked.connect(self._download_catalog_clicked)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(self.catalog_tree)
        layout.addWidget(self.description)
        layout.addWidget(self.catalog_download, alignment=Qt.AlignmentFlag.AlignLeft)
        return page

    def _build_search(self) -> QWidget:
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search GGUF models on Hugging Face (e.g. llama 2)")
        self.search_box.returnPressed.connect(self._search_clicked)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self._search_clicked)
        row = QHBoxLayout()
        row.addWidget(self.search_box)
        row.addWidget(self.search_button)
        self.repo_list = self._tree(["Repository", "Downloads", "Access"])
        self.repo_list.currentItemChanged.connect(self._repo_selected)
        self.file_list = self._tree(["File", "Quantisation", "Size", "Fit"])
        self.file_list.itemDoubleClicked.connect(lambda *_: self._download_file_clicked())
        self.file_download = QPushButton("Download")
        self.file_download.clicked.connect(self._download_file_clicked)
        lists = QSplitter(Qt.Orientation.Horizontal)
        lists.addWidget(self.repo_list)
        lists.addWidget(self.file_list)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(lists)
        layout.addWidget(self.file_download, alignment=Qt.AlignmentFlag.AlignLeft)
        return page

    def _build_downloads(self) -> QWidget:
        self.download_list = self._tree(["Download", "Progress", "Status"])
        self.download_list.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.download_list.setColumnWidth(1, 180)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(lambda: self._selected_download(self.downloads.pause))
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self._resume_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel_clicked)
        buttons = QHBoxLayout()
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch()
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Downloads"))
        layout.addWidget(self.download_list)
        layout.addLayout(buttons)
        return page

    # -- fit ---------------------------------------------------------------
    def fit_for(self, size: int | None, shape: ModelShape | None,
                context_length: int | None) -> FitEstimate | None:
        """The fit estimate for a file of ``size`` bytes at the page's context size (capped
        at the model's ``context_length``) under the hardware settings in force."""
        if size is None:
            return None
        return estimate_fit(size, shape, self.n_ctx, self._budget,
                            context_length=context_length,
                            hardware=self._settings().hardware)

    @staticmethod
    def _set_fit(item: QTreeWidgetItem, column: int, fit: FitEstimate | None) -> None:
        item.setText(column, fit.label.value if fit else "?")
        item.setToolTip(column, fit.explanation if fit else "Size unknown")

    # -- installed ---------------------------------------------------------------
    def refresh_installed(self) -> None:
        """Re-read the registry into the Installed list."""
        self.installed.clear()
        try:
            entries = self.registry.models()
        except RegistryError as exc:
            self._say(str(exc))
            return
        for entry in entries:
            item = QTreeWidgetItem([entry.name, entry.quantisation or "?",
                                    format_bytes(entry.size), str(entry.source), ""])
            item.setData(0, DataRole, entry.id)
            item.setToolTip(0, entry.path)
            self._set_fit(item, 4, self.fit_for(entry.size, entry.shape, entry.context_length))
            self.installed.addTopLevelItem(item)

    def _selected_installed(self) -> ModelEntry | None:
        item = self.installed.currentItem()
        return self.registry.get(str(item.data(0, DataRole))) if item else None

    @Slot()
    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "",
                                              "GGUF models (*.gguf);;All files (*)")
        if not path:
            return
        link = self.ask_link(Path(path))
        if link is None:
            return
        self.downloads.enqueue_import(ImportRequest(path, link=link))

    def ask_link(self, path: Path) -> bool | None:
        """Copy the file into the models folder (False), use it in place (True), or not
        import it (None)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Import",
                          f"Copy {path.name} into LlamaDesk's models folder, or use it where "
                          "it is? A file used in place must stay there.", parent=self)
        copy = box.addButton("Copy", QMessageBox.ButtonRole.AcceptRole)
        link = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return None if clicked not in (copy, link) else clicked is link

    @Slot()
    def _remove_clicked(self) -> None:
        entry = self._selected_installed()
        if entry is None:
            return
        if entry.read_only:
            self._say(f"{entry.name} ships with LlamaDesk and cannot be removed.")
            return
        if not self.confirm_remove(entry):
            return
        try:
            self.registry.remove(entry.id)
        except RegistryError as exc:
            self._say(str(exc))
            return
        self._say(f"Removed {entry.name}.")
        self.refresh_installed()
        self.models_changed.emit()

    def confirm_remove(self, entry: ModelEntry) -> bool:
        """Ask before removing (tests replace this)."""
        what = ("It stays on disk where it is." if entry.source == ModelSource.LINKED
                else "Its file is deleted.")
        answer = QMessageBox.question(self, "Remove model", f"Remove {entry.name}? {what}")
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def _show_clicked(self) -> None:
        entry = self._selected_installed()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.folder)))

    # -- catalog ---------------------------------------------------------------
    def _fill_catalog(self) -> None:
        for entry in self.catalog.entries:
            top = QTreeWidgetItem([f"{entry.name}  ({entry.family})", "", "",
                                   entry.licence.name])
            top.setData(0, DataRole, entry.id)
            shape = ModelShape.from_hint(entry.architecture)
            for item in entry.files:
                default = " (recommended)" if item.quant == entry.default_quant else ""
                child = QTreeWidgetItem([f"{item.quant}{default}", f"~{format_bytes(item.size)}",
                                         "", ""])
                child.setData(0, DataRole, f"{entry.id}:{item.quant}")
                self._set_fit(child, 2, self.fit_for(item.size, shape, entry.context_length))
                top.addChild(child)
            self.catalog_tree.addTopLevelItem(top)

    def _catalog_choice(self) -> tuple[CatalogEntry, str | None] | None:
        item = self.catalog_tree.currentItem()
        if item is None:
            return None
        spec = str(item.data(0, DataRole))
        entry_id, _, quant = spec.partition(":")
        entry = self.catalog.get(entry_id)
        return (entry, quant or None) if entry else None

    @Slot()
    def _catalog_selected(self) -> None:
        choice = self._catalog_choice()
        if choice is not None:
            entry = choice[0]
            self.description.setText(f"<b>{entry.name}</b> — {entry.description}<br>"
                                     f"Licence: <a href='{entry.licence.url}'>"
                                     f"{entry.licence.name}</a>")
            self.description.setOpenExternalLinks(True)

    @Slot()
    def _download_catalog_clicked(self) -> None:
        choice = self._catalog_choice()
        if choice is None:
            return
        entry, quant = choice
        if entry.bundled and (quant or entry.default_quant) == entry.default_quant:
            self._say(f"{entry.name} ships with LlamaDesk; there is nothing to download.")
            return
        self.download(DownloadRequest.for_catalog(entry, quant))

    # -- search ---------------------------------------------------------------
    @Slot()
    def _search_clicked(self) -> None:
        query = self.search_box.text().strip()
        self.repo_list.clear()
        self.file_list.clear()
        self._say(f"Searching the Hub for {query!r}…")
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
        self._say(f"{len(repos)} repositories found." if repos else "Nothing found.")

    @Slot(int, str, object)
    def _on_search_failed(self, request_id: int, reason: str, kind: HubErrorKind) -> None:
        if request_id == self._search_id:
            self._say(reason)

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
                self._set_fit(item, 3, self.fit_for(choice.size, shape,
                                                     entry.context_length if entry else None))
            self.file_list.addTopLevelItem(item)
        self._say(f"{repo}: {len(choices)} GGUF models." if choices else
                  f"{repo} holds no GGUF files.")

    @Slot(int, str, str, object)
    def _on_files_failed(self, request_id: int, repo: str, reason: str,
                         kind: HubErrorKind) -> None:
        if request_id == self._files_id:
            self._say(reason)

    @Slot()
    def _download_file_clicked(self) -> None:
        item = self.file_list.currentItem()
        if item is None:
            return
        choice: GGUFChoice = item.data(0, DataRole)
        if choice.refusal:
            self._say(choice.refusal)
            return
        self.download(DownloadRequest(choice.repo, choice.filename))

    # -- downloads ---------------------------------------------------------------
    def download(self, request: DownloadRequest) -> str | None:
        """Queue a download, asking for its licence first when needed; returns its key."""
        entry = (self.catalog.get(request.catalog_id) if request.catalog_id else None) \
            or self.catalog.for_repo(request.repo)
        if entry is not None and self.licences.needs_acceptance(entry.licence):
            if not self.ask_licence(entry):
                self._say("Licence not accepted; nothing was downloaded.")
                return None
            self.licences.accept(entry.licence)
        self._remember(request)
        return self.downloads.enqueue(request)

    def ask_licence(self, entry: CatalogEntry) -> bool:
        """Show the licence dialog; True if the user accepted."""
        return LicenceDialog(entry.licence, entry.name, self).exec() == \
            QDialog.DialogCode.Accepted

    def ask_token(self, reason: str) -> str | None:
        """Ask for a Hugging Face token after a gated-repo refusal; None if declined."""
        token, ok = QInputDialog.getText(
            self, "Hugging Face token", f"{reason}\n\nPaste an access token with read access:",
            QLineEdit.EchoMode.Password)
        return token if ok and token.strip() else None

    def _remember(self, request: DownloadRequest | ImportRequest) -> _DownloadRow:
        row = self._rows.get(request.key)
        if row is not None:
            row.request = request
            return row
        name = (request.filename if isinstance(request, DownloadRequest)
                else f"Import {Path(request.path).name}")
        item = QTreeWidgetItem([name, "", "Queued"])
        item.setData(0, DataRole, request.key)
        bar = QProgressBar()
        bar.setRange(0, 100)
        bar.setValue(0)
        self.download_list.addTopLevelItem(item)
        self.download_list.setItemWidget(item, 1, bar)
        row = _DownloadRow(request, item, bar)
        self._rows[request.key] = row
        return row

    def _offer_partials(self) -> None:
        for partial in self.downloads.partials():
            row = self._remember(partial.request)
            row.state = "stopped"
            if partial.total:
                row.bar.setValue(int(100 * partial.done / partial.total))
            row.item.setText(2, f"Stopped at {format_bytes(partial.done)} of "
                                f"{format_bytes(partial.total)}: resume to continue")

    def row(self, key: str) -> _DownloadRow | None:
        """The downloads-list row of a job (for tests and the main window)."""
        return self._rows.get(key)

    def _selected_download(self, action: Callable[[str], None]) -> None:
        item = self.download_list.currentItem()
        if item is not None:
            action(str(item.data(0, DataRole)))

    @Slot()
    def _resume_clicked(self) -> None:
        self._selected_download(self.resume)

    def resume(self, key: str) -> None:
        """Resume a paused, stopped or failed download."""
        row = self._rows.get(key)
        if row is None:
            return
        if self.downloads.state(key) is not None:
            self.downloads.resume(key)
        elif isinstance(row.request, DownloadRequest):
            self.downloads.enqueue(row.request)

    @Slot()
    def _cancel_clicked(self) -> None:
        self._selected_download(self.cancel)

    def cancel(self, key: str) -> None:
        """Cancel a download and delete its partial file."""
        row = self._rows.get(key)
        if row is None:
            return
        if self.downloads.state(key) is not None:
            self.downloads.cancel(key)
        elif isinstance(row.request, DownloadRequest):
            self.downloads.discard_partial(row.request)
            self._on_cancelled(key)

    @Slot(str)
    def _on_queued(self, key: str) -> None:
        row = self._rows.get(key)
        if row is not None:
            row.state = "queued"
            row.item.setText(2, "Queued")

    @Slot(str)
    def _on_started(self, key: str) -> None:
        row = self._rows.get(key)
        if row is not None:
            row.state = "running"
            row.item.setText(2, "Starting…")

    @Slot(str, "qint64", "qint64", float, float)
    def _on_progressed(self, key: str, done: int, total: int, speed: float, eta: float) -> None:
        row = self._rows.get(key)
        if row is None or not total:
            return
        row.bar.setValue(int(100 * done / total))
        text = f"{format_bytes(done)} of {format_bytes(total)}"
        if speed > 0:
            text += f" · {format_speed(speed)} · {format_duration(eta if eta >= 0 else None)} left"
        row.item.setText(2, text)

    @Slot(str, object)
    def _on_finished(self, key: str, entry: ModelEntry) -> None:
        row = self._rows.get(key)
        if row is not None:
            row.state = "done"
            row.bar.setValue(100)
            row.item.setText(2, "Installed and verified")
        self._say(f"{entry.name} is installed.")
        self.refresh_installed()
        self.models_changed.emit()

    @Slot(str, "qint64", "qint64")
    def _on_paused(self, key: str, done: int, total: int) -> None:
        row = self._rows.get(key)
        if row is not None:
            row.state = "paused"
            row.item.setText(2, f"Paused at {format_bytes(done)}" if done else "Paused")

    @Slot(str)
    def _on_cancelled(self, key: str) -> None:
        row = self._rows.pop(key, None)
        if row is not None:
            index = self.download_list.indexOfTopLevelItem(row.item)
            self.download_list.takeTopLevelItem(index)
        self._say("Download cancelled.")

    @Slot(str, str, object)
    def _on_failed(self, key: str, reason: str, kind: DownloadErrorKind) -> None:
        row = self._rows.get(key)
        if row is not None:
            row.state = "failed"
            row.item.setText(2, f"Failed: {reason}")
            row.item.setToolTip(2, reason)
        self._say(reason)
        if kind is DownloadErrorKind.GATED and row is not None:
            self._offer_token(key, reason)

    def _offer_token(self, key: str, reason: str) -> None:
        token = self.ask_token(reason)
        if token is None:
            return
        try:
            result = self.secrets.set_hf_token(token)
        except InvalidTokenError as exc:
            self._say(f"That is not a token: {exc}.")
            return
        self._say(result.message)
        self.resume(key)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # -- for tests and the main window ----------------------------------------
    def installed_ids(self) -> list[str]:
        """The ids in the Installed list, in order."""
        return [str(self.installed.topLevelItem(i).data(0, DataRole))
                for i in range(self.installed.topLevelItemCount())]

    def select(self, tree: QTreeWidget, predicate: Callable[[QTreeWidgetItem], bool]) -> bool:
        """Select the first item (at any depth) for which ``predicate`` holds."""
        def walk(item: QTreeWidgetItem) -> QTreeWidgetItem | None:
            if predicate(item):
                return item
            for i in range(item.childCount()):
                found = walk(item.child(i))
                if found is not None:
                    return found
            return None

        for i in range(tree.topLevelItemCount()):
            found = walk(tree.topLevelItem(i))
            if found is not None:
                tree.setCurrentItem(found)
                return True
        return False


__all__ = ["LicenceDialog", "ModelManagerPage"]
