"""The preset chooser of a chat's settings panel: apply a preset to the chat, save the
chat's settings as a preset, rename or delete the user's own presets. Its changes are
window operations (``ui/operations.py``): a refused one is a banner, a done one is
announced as ``Changes(presets=True)``, on which every chooser lists the presets again."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QToolButton,
    QWidget,
)

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.presets import Preset, PresetBook
from llamadesk.ui.operations import Changes, Operations

#: What the chooser shows when the chat's settings match no preset.
CUSTOM = "Custom"

_T = TypeVar("_T")


def matching_preset(book: PresetBook, system_prompt: str,
                    params: SamplingParams) -> Preset | None:
    """The preset these settings are (the context length does not count), if any."""
    return next((p for p in book.presets() if p.system_prompt == system_prompt
                 and p.applied_to(params) == params), None)


class PresetChooser(QWidget):
    """A list of presets (choosing one applies it) and a menu to save, rename and
    delete them.

    Signals:
        apply_requested(Preset): make the chat's settings this preset's.
    """

    apply_requested = Signal(object)

    def __init__(self, book: PresetBook, current: Callable[[], tuple[str, SamplingParams]],
                 operations: Operations, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.book = book
        self._current = current
        self._ops = operations
        operations.changed.connect(self._on_changes)
        self.combo = QComboBox()
        self.combo.setAccessibleName("Preset")
        self.combo.setToolTip("Apply a preset: a system prompt and sampling settings")
        self.combo.activated.connect(self._on_activated)
        self.menu_button = QToolButton()
        self.menu_button.setText("⋯")
        self.menu_button.setAccessibleName("Preset actions")
        self.menu_button.setToolTip("Save this chat's settings as a preset, rename or "
                                    "delete a preset")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.menu_button)
        self.save_action = menu.addAction("&Save as preset…", self.save_as)
        self.rename_action = menu.addAction("&Rename preset…", self.rename)
        self.delete_action = menu.addAction("&Delete preset…", self.delete)
        menu.aboutToShow.connect(self._sync_actions)
        self.menu_button.setMenu(menu)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.menu_button)
        self.refresh()

    def refresh(self) -> None:
        """List the presets again and show the one the chat's settings match."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(CUSTOM, None)
        for preset in self.book.presets():
            label = preset.name if preset.builtin else f"{preset.name} (yours)"
            self.combo.addItem(label, preset.name)
        self.combo.blockSignals(False)
        self.show_matching(*self._current())

    def show_matching(self, system_prompt: str, params: SamplingParams) -> None:
        """Select the preset these settings match, else "Custom"."""
        preset = matching_preset(self.book, system_prompt, params)
        self.combo.setCurrentIndex(max(self.combo.findData(preset.name if preset else None), 0))

    def selected(self) -> Preset | None:
        """The preset selected in the list."""
        name = self.combo.currentData()
        return self.book.get(name) if isinstance(name, str) else None

    @Slot(int)
    def _on_activated(self, index: int) -> None:
        name = self.combo.itemData(index)
        preset = self.book.get(name) if isinstance(name, str) else None
        if preset is not None:
            self.apply_requested.emit(preset)

    def _sync_actions(self) -> None:
        preset = self.selected()
        mine = preset is not None and not preset.builtin
        self.rename_action.setEnabled(mine)
        self.delete_action.setEnabled(mine)

    # -- changes -------------------------------------------------------------------------
    def save_as(self, name: str | None = None) -> Preset | None:
        """Save the chat's settings as a preset (asks for a name unless given one;
        replacing one of the user's own asks first)."""
        if name is None:
            name, ok = QInputDialog.getText(self, "Save as preset", "Name of the new preset:",
                                            QLineEdit.EchoMode.Normal, "")
            if not ok:
                return None
        existing = self.book.get(name)
        overwrite = False
        if existing is not None and not existing.builtin:
            answer = QMessageBox.question(self, "Replace preset",
                                          f"Replace your preset “{existing.name}”?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            overwrite = True
        system_prompt, params = self._current()
        return self._change(lambda: self.book.save(name, system_prompt, params,
                                                   overwrite=overwrite))

    def rename(self, new_name: str | None = None) -> Preset | None:
        """Rename the selected preset (one of the user's own)."""
        preset = self.selected()
        if preset is None or preset.builtin:
            return None
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename preset", "New name:",
                                                QLineEdit.EchoMode.Normal, preset.name)
            if not ok:
                return None
        return self._change(lambda: self.book.rename(preset.name, new_name))

    def delete(self, ask: bool = True) -> bool:
        """Delete the selected preset (one of the user's own), after asking."""
        preset = self.selected()
        if preset is None or preset.builtin:
            return False
        if ask and QMessageBox.question(
                self, "Delete preset", f"Delete your preset “{preset.name}”? Chats that use "
                "its settings keep them.") != QMessageBox.StandardButton.Yes:
            return False

        def delete() -> bool:
            self.book.delete(preset.name)
            return True

        return bool(self._change(delete))

    def _change(self, change: Callable[[], _T]) -> _T | None:
        # In place, not in the background: the book belongs to this thread (see
        # ui/operations.py). The announcement lists the presets again, here as well.
        results: list[_T] = []
        done = self._ops.run(change, Changes(presets=True), initiator=self,
                             success=results.append)
        return results[0] if done else None

    @Slot(object, object)
    def _on_changes(self, changes: Changes, _initiator: object) -> None:
        if changes.presets:
            self.refresh()
