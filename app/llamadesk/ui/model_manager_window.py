"""The model manager window ("Models"): hosts the model manager page and the services
behind it.

Built on first use, so starting the app costs nothing for it and nothing touches the
network until the user opens it (and then only when they search or download).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QDialog, QVBoxLayout, QWidget

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.downloads import Downloader
from llamadesk.core.hub import HubClient
from llamadesk.core.licences import ACCEPTANCES_FILE, LicenceAcceptances
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.secrets import SecretStore
from llamadesk.core.settings import AppSettings, load_settings
from llamadesk.services.downloads import DownloadService
from llamadesk.services.hub_queries import HubQueryService
from llamadesk.ui.model_manager_page import ModelManagerPage


class ModelManagerWindow(QDialog):
    """A non-modal window with the model manager page."""

    def __init__(self, paths: AppPaths, registry: ModelRegistry, n_ctx: int,
                 parent: QWidget | None = None, *,
                 settings: Callable[[], AppSettings] | None = None) -> None:
        """``settings`` gives the settings in force (the fit labels follow their GPU
        offload and context cache); by default they are read from the settings file."""
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setModal(False)
        self.resize(980, 640)
        catalog = registry.catalog or ModelCatalog.load()
        secrets = SecretStore()
        licences = LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE)
        downloader = Downloader(paths, HubClient(token=secrets.hf_token), registry,
                                catalog=catalog, licences=licences)
        self.downloads = DownloadService(downloader)
        self.queries = HubQueryService(HubClient(token=secrets.hf_token))
        self.page = ModelManagerPage(
            self.downloads, self.queries, registry, catalog, licences, secrets, n_ctx=n_ctx,
            settings=settings or (lambda: load_settings(paths.settings_file)), parent=self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.page)

    def shutdown(self) -> None:
        """Stop the workers (a running download pauses, to resume next time)."""
        self.downloads.shutdown()
        self.queries.shutdown()
