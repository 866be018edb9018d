"""The model manager page ("Models"): installed models, the curated catalog, Hub search,
and downloads.

Thin: it shows what the registry, the catalog and the Hub query service say, and hands
downloads and imports to the download service. Every file it offers carries its
quantisation, size and a fit label; downloads show progress, speed and time left and can
be paused, resumed and cancelled. A licence that must be accepted is asked for before
the first download under it; a gated repo asks for a token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
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
from llamadesk.core.fit import FitEstimate, MemoryBudget, ModelShape
from llamadesk.core.licences import LLAMA2, LicenceAcceptances
from llamadesk.core.registry import ModelEntry, ModelRegistry, ModelSource, RegistryError
from llamadesk.core.secrets import InvalidTokenError, SecretStore
from llamadesk.core.settings import AppSettings
from llamadesk.core.units import format_bytes
from llamadesk.services.downloads import DownloadService, ImportRequest
from llamadesk.services.fit_check import memory_budget
from llamadesk.services.hub_queries import HubQueryService
from llamadesk.services.resolver import fit_estimate
from llamadesk.ui.hub_search import HubSearchPanel
from llamadesk.ui.licence_dialog import LicenceDialog
from llamadesk.ui.model_downloads import DownloadList
from llamadesk.ui.model_lists import DataRole, make_tree, set_fit


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
        n_ctx: int | None = None,
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

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_installed(), "Installed")
        self.tabs.addTab(self._build_catalog(), "Catalog")
        self.hub_search = HubSearchPanel(queries, catalog, self.fit_for)
        self.hub_search.message.connect(self._say)
        self.hub_search.download_requested.connect(self.download)
        self.tabs.addTab(self.hub_search, "Search the Hub")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tabs)
        self.download_list = DownloadList(downloads)
        self.download_list.message.connect(self._say)
        splitter.addWidget(self.download_list)
        splitter.setStretchFactor(0, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        layout.addWidget(self.status)

        self.downloads.download_finished.connect(self._on_finished)
        self.downloads.download_failed.connect(self._on_failed)

        self.refresh_installed()
        self._fill_catalog()

    # -- building ---------------------------------------------------------------
    def _build_installed(self) -> QWidget:
        self.installed = make_tree(["Model", "Quantisation", "Size", "Source", "Fit"])
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
        self.catalog_tree = make_tree(["Model", "Size", "Fit", "Licence"])
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

    # -- fit ---------------------------------------------------------------
    def fit_for(self, size: int | None, shape: ModelShape | None,
                context_length: int | None) -> FitEstimate | None:
        """The fit estimate for a file of ``size`` bytes at the page's context size (capped
        at the model's ``context_length``) under the hardware settings in force."""
        if size is None:
            return None
        return fit_estimate(self._settings(), size, shape, context_length, self.n_ctx,
                            self._budget)

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
            set_fit(item, 4, self.fit_for(entry.size, entry.shape, entry.context_length))
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
        request = ImportRequest(path, link=link)
        self.download_list.remember(request)  # its row shows the copy, and lets it retry
        self.downloads.enqueue_import(request)

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
                set_fit(child, 2, self.fit_for(item.size, shape, entry.context_length))
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

    # -- downloads ---------------------------------------------------------------
    @Slot(object)
    def download(self, request: DownloadRequest) -> str | None:
        """Queue a download, asking for its licence first when needed; returns its key."""
        entry = (self.catalog.get(request.catalog_id) if request.catalog_id else None) \
            or self.catalog.for_repo(request.repo)
        if entry is not None and self.licences.needs_acceptance(entry.licence):
            if not self.ask_licence(entry.licence, entry.name):
                self._say("Licence not accepted; nothing was downloaded.")
                return None
            self.licences.accept(entry.licence)
        self.download_list.remember(request)
        return self.downloads.enqueue(request)

    def ask_licence(self, licence: Licence, model_name: str) -> bool:
        """Show the licence dialog; True if the user accepted."""
        return LicenceDialog(licence, model_name, self).exec() == QDialog.DialogCode.Accepted

    def _offer_licence(self, key: str) -> None:
        """A searched model turned out to be a Llama 2 derivative (from the Hub's metadata
        or its own): ask, then resume. Catalog models are asked for before queueing, so
        the Llama 2 licence is the only one the downloader can refuse for. An import of a
        file that names itself a Llama 2 derivative is refused the same way."""
        row = self.download_list.row(key)
        if row is None:
            return
        request = row.request
        name = (request.filename if isinstance(request, DownloadRequest)
                else Path(request.path).name)
        if not self.ask_licence(LLAMA2, name):
            self._say("Licence not accepted; the download is kept paused.")
            return
        self.licences.accept(LLAMA2)
        self.download_list.resume(key)

    def ask_token(self, reason: str) -> str | None:
        """Ask for a Hugging Face token after a gated-repo refusal; None if declined."""
        token, ok = QInputDialog.getText(
            self, "Hugging Face token", f"{reason}\n\nPaste an access token with read access:",
            QLineEdit.EchoMode.Password)
        return token if ok and token.strip() else None

    @Slot(str, object)
    def _on_finished(self, _key: str, entry: ModelEntry) -> None:
        self._say(f"{entry.name} is installed.")
        self.refresh_installed()
        self.models_changed.emit()

    @Slot(str, str, object)
    def _on_failed(self, key: str, reason: str, kind: DownloadErrorKind) -> None:
        self._say(reason)
        if kind is DownloadErrorKind.GATED and self.download_list.row(key) is not None:
            self._offer_token(key, reason)
        elif kind is DownloadErrorKind.LICENCE and self.download_list.row(key) is not None:
            self._offer_licence(key)

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
        self.download_list.resume(key)

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


__all__ = ["ModelManagerPage"]
