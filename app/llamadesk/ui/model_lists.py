"""Pieces the model manager's lists share: how a list looks and how a fit label shows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from llamadesk.core.fit import FitEstimate

#: The item role that holds what a row stands for (a model id, a repo, a file choice).
DataRole = Qt.ItemDataRole.UserRole


def make_tree(headers: list[str]) -> QTreeWidget:
    """A flat, single-selection list whose first column takes the spare width."""
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


def set_fit(item: QTreeWidgetItem, column: int, fit: FitEstimate | None) -> None:
    """Show a fit label in ``column``, with its explanation as the tooltip."""
    item.setText(column, fit.label.value if fit else "?")
    item.setToolTip(column, fit.explanation if fit else "Size unknown")
