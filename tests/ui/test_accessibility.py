"""Keyboard and assistive technology: every interactive control of the window (and of
its dialogs) has an accessible name, every menu command is reachable from the keyboard
(an accelerator in its menu), and each shortcut shows in the menu and the tooltip."""

from __future__ import annotations

from PySide6.QtGui import QAccessible, QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QStyleOptionMenuItem,
    QTabBar,
    QTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.ui.compare import CompareDialog
from llamadesk.ui.preferences import PreferencesDialog

INTERACTIVE = (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QPlainTextEdit,
               QTextEdit, QAbstractItemView)


def accessible_name(widget: QWidget) -> str:
    """The name a screen reader announces: the accessible name, else what Qt derives
    (a button's text, a form label that names the field as its buddy)."""
    interface = QAccessible.queryAccessibleInterface(widget)
    assert interface is not None, f"{widget!r} is not accessible"
    return interface.text(QAccessible.Text.Name).strip()


def unnamed_controls(root: QWidget) -> list[str]:
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or widget.objectName().startswith("qt_"):
            continue  # Qt's own parts (a menu bar's overflow button) name themselves
        parent = widget.parentWidget()
        if isinstance(parent, QAbstractSpinBox | QComboBox | QLineEdit | QTabBar):
            continue  # the editor in a spin box, a line edit's clear button: part of it
        if parent is not None and parent.inherits("QComboBoxPrivateContainer"):
            continue  # a combo box's popup list
        if not accessible_name(widget):
            missing.append(f"{type(widget).__name__} {widget.objectName()!r} "
                           f"(tooltip {widget.toolTip()!r}, in "
                           f"{type(widget.parentWidget()).__name__})")
    return missing


def menu_actions(menu: QMenu, path: str = "") -> list[tuple[str, QAction]]:
    found = []
    for action in menu.actions():
        if action.isSeparator():
            continue
        here = f"{path} › {action.text()}" if path else action.text()
        found.append((here, action))
        if action.menu() is not None:
            found += menu_actions(action.menu(), here)
    return found


def test_every_control_of_the_window_has_an_accessible_name(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    window.chat.settings_button.setChecked(True)  # the settings panel's controls too
    assert unnamed_controls(window) == []


def test_every_control_of_the_dialogs_has_an_accessible_name(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    preferences = PreferencesDialog(window.ctx.settings.current, window, window.ctx.presets)
    qtbot.addWidget(preferences)
    assert unnamed_controls(preferences) == []
    question = window.store.add_message(window.current_id, "user", "Hi")
    reply = window.store.add_message(window.current_id, "assistant", "Hello",
                                     parent_id=question.id)
    compare = CompareDialog(question, [reply], reply.id, window.ctx.names, window)
    qtbot.addWidget(compare)
    assert unnamed_controls(compare) == []


def test_every_menu_command_is_keyboard_reachable_and_shows_its_shortcut(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    bar = window.menuBar()
    for top in bar.actions():
        assert "&" in top.text(), f"menu {top.text()} has no accelerator"
    actions = [item for top in bar.actions() for item in menu_actions(top.menu(), top.text())]
    assert len(actions) > 25
    with_shortcut = 0
    for path, action in actions:
        assert "&" in action.text(), f"{path} has no accelerator key"
        shortcut = action.shortcut()
        if shortcut.isEmpty():
            continue
        with_shortcut += 1
        shown = shortcut.toString(QKeySequence.SequenceFormat.NativeText)
        assert shown in action.toolTip(), f"{path}: the tooltip does not show {shown}"
        # What the menu paints for the item: its text, a tab, its shortcut.
        menu = next(m for m in window.findChildren(QMenu) if action in m.actions())
        option = QStyleOptionMenuItem()
        menu.initStyleOption(option, action)
        assert option.text.endswith("\t" + shown), f"{path}: the menu shows {option.text!r}"
    assert with_shortcut >= 20


def test_buttons_name_their_shortcuts_in_their_tooltips(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    assert "Ctrl+Shift+S" in window.chat.settings_button.toolTip()
    assert "Ctrl+M" in window.chat.findChild(QAbstractButton, "modelsButton").toolTip()
    assert "Enter" in window.chat.send_button.toolTip()
