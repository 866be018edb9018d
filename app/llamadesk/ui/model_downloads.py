"""The model manager's downloads list: one row per download or import, with progress,
speed and time left, and Pause / Resume / Cancel for the selected row.

It shows what the download service says and asks it to pause, resume and cancel; what
a finished or failed download means for the rest of the page is the page's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from llamadesk.core.downloads import DownloadErrorKind, DownloadRequest
from llamadesk.core.registry import ModelEntry
from llamadesk.core.units import format_bytes, format_duration, format_speed
from llamadesk.services.downloads import DownloadService, ImportRequest
from llamadesk.ui.model_lists import DataRole, make_tree


@dataclass
class DownloadRow:
    """A download's row: what was asked for, and its item and progress bar."""

    request: DownloadRequest | ImportRequest
    item: QTreeWidgetItem
    bar: QProgressBar


class DownloadList(QWidget):
    """The downloads under way, paused or failed, and the buttons that act on them.

    Signals:
        message(str): something to tell the user in the page's status line.
    """

    message = Signal(str)

    def __init__(self, downloads: DownloadService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.downloads = downloads
        self._rows: dict[str, DownloadRow] = {}
        self.tree = make_tree(["Download", "Progress", "Status"])
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.tree.setColumnWidth(1, 180)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(lambda: self._selected(self.downloads.pause))
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self._selected(self.resume))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self._selected(self.cancel))
        buttons = QHBoxLayout()
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Downloads"))
        layout.addWidget(self.tree)
        layout.addLayout(buttons)

        d = self.downloads
        d.download_queued.connect(self._on_queued)
        d.download_started.connect(self._on_started)
        d.download_progressed.connect(self._on_progressed)
        d.download_finished.connect(self._on_finished)
        d.download_paused.connect(self._on_paused)
        d.download_cancelled.connect(self._on_cancelled)
        d.download_failed.connect(self._on_failed)
        self._offer_partials()

    def remember(self, request: DownloadRequest | ImportRequest) -> DownloadRow:
        """The row for ``request``, added if new."""
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
        self.tree.addTopLevelItem(item)
        self.tree.setItemWidget(item, 1, bar)
        row = DownloadRow(request, item, bar)
        self._rows[request.key] = row
        return row

    def row(self, key: str) -> DownloadRow | None:
        """A job's row, if listed."""
        return self._rows.get(key)

    def _offer_partials(self) -> None:
        for partial in self.downloads.partials():
            row = self.remember(partial.request)
            if partial.total:
                row.bar.setValue(int(100 * partial.done / partial.total))
            row.item.setText(2, f"Stopped at {format_bytes(partial.done)} of "
                                f"{format_bytes(partial.total)}: resume to continue")

    def _selected(self, action: Callable[[str], None]) -> None:
        item = self.tree.currentItem()
        if item is not None:
            action(str(item.data(0, DataRole)))

    def resume(self, key: str) -> None:
        """Resume a paused, stopped or failed download."""
        row = self._rows.get(key)
        if row is None:
            return
        if self.downloads.state(key) is not None:
            self.downloads.resume(key)
        elif isinstance(row.request, DownloadRequest):
            self.downloads.enqueue(row.request)
        else:  # an import refused (its licence): try it again
            self.downloads.enqueue_import(row.request)

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

    def _status(self, key: str, text: str) -> DownloadRow | None:
        row = self._rows.get(key)
        if row is not None:
            row.item.setText(2, text)
        return row

    @Slot(str)
    def _on_queued(self, key: str) -> None:
        self._status(key, "Queued")

    @Slot(str)
    def _on_started(self, key: str) -> None:
        self._status(key, "Starting…")

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
    def _on_finished(self, key: str, _entry: ModelEntry) -> None:
        row = self._status(key, "Installed and verified")
        if row is not None:
            row.bar.setValue(100)

    @Slot(str, "qint64", "qint64")
    def _on_paused(self, key: str, done: int, _total: int) -> None:
        self._status(key, f"Paused at {format_bytes(done)}" if done else "Paused")

    @Slot(str)
    def _on_cancelled(self, key: str) -> None:
        row = self._rows.pop(key, None)
        if row is not None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(row.item))
        self.message.emit("Download cancelled.")

    @Slot(str, str, object)
    def _on_failed(self, key: str, reason: str, _kind: DownloadErrorKind) -> None:
        row = self._status(key, f"Failed: {reason}")
        if row is not None:
            row.item.setToolTip(2, reason)
