"""The model picker's groups: "Local" (installed models), then one per connection that
is on, each headed by a row that cannot be picked."""

from __future__ import annotations

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox

LOCAL_GROUP = "Local"


def add_header(combo: QComboBox, title: str) -> None:
    """A row that names a group and cannot be picked."""
    combo.addItem(title, None)
    model = combo.model()
    if isinstance(model, QStandardItemModel):
        item = model.item(combo.count() - 1)
        if item is not None:
            item.setEnabled(False)
            font = item.font()
            font.setBold(True)
            item.setFont(font)


def fill(combo: QComboBox, local: list[tuple[str, str]],
         remote: dict[str, tuple[str, ...]]) -> None:
    """``local`` (label, id) pairs, then each connection's models (ids
    ``<connection>/<model>``). With no remote models the list has no headers."""
    if remote:
        add_header(combo, LOCAL_GROUP)
    for label, model_id in local:
        combo.addItem(label, model_id)
    for name, models in remote.items():
        add_header(combo, name)
        for model in models:
            combo.addItem(f"{model}", f"{name}/{model}")
