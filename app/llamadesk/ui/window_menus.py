"""The main window's menus. Every command of the window is here, so each one can be
reached from the keyboard (an accelerator in its menu, most a shortcut too); the
shortcut shows in the menu and in the action's tooltip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar

from llamadesk.core.settings import THEME_DARK, THEME_LIGHT, THEME_SYSTEM

if TYPE_CHECKING:
    from llamadesk.ui.chat_pane import ChatPane
    from llamadesk.ui.local_api import LocalApi
    from llamadesk.ui.sidebar import ConversationSidebar
    from llamadesk.ui.theme import ThemeManager

Shortcut = QKeySequence | QKeySequence.StandardKey | str | None

THEME_LABELS = ((THEME_SYSTEM, "Follow the &system"), (THEME_LIGHT, "&Light"),
                (THEME_DARK, "&Dark"))


@dataclass
class WindowActions:
    """The actions other code refers to (state to keep in step, tests)."""

    stop: QAction
    regenerate_with: QMenu
    themes: dict[str, QAction]
    bigger: QAction
    smaller: QAction
    actual_size: QAction


class MenuHost(Protocol):
    """What the menus need of the window (``ui/main_window.MainWindow``), named here so
    that this module does not import the window that builds its menus."""

    chat: ChatPane
    sidebar: ConversationSidebar
    theme: ThemeManager
    local_api: LocalApi

    def menuBar(self) -> QMenuBar: ...
    def close(self) -> bool: ...
    def new_conversation(self) -> None: ...
    def delete_current(self) -> None: ...
    def export_current(self) -> None: ...
    def export_current_json(self) -> None: ...
    def back_up_all(self) -> None: ...
    def import_files(self) -> None: ...
    def import_folder(self) -> None: ...
    def stop(self) -> None: ...
    def regenerate_current(self) -> None: ...
    def compare_current(self) -> None: ...
    def step_version(self, step: int) -> None: ...
    def show_models(self) -> None: ...
    def show_local_api_access(self) -> None: ...
    def show_preferences(self, local_api: bool = False) -> None: ...
    def show_about(self) -> None: ...


def add_action(window: QObject, menu: QMenu, text: str, slot: Callable[[], object],
               shortcut: Shortcut = None, *more: Shortcut) -> QAction:
    """A menu action with its shortcut(s), the first shown in its tooltip."""
    action = QAction(text, window)
    keys = [QKeySequence(k) for k in (shortcut, *more) if k is not None]
    if keys:
        action.setShortcuts(keys)
    plain = text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")
    shown = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    action.setToolTip(f"{plain} ({shown})" if shown else plain)
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_menus(w: MenuHost) -> WindowActions:
    """Fill the window's menu bar; returns the actions the window keeps."""
    menus = w.menuBar()
    file = menus.addMenu("&File")
    add_action(w, file, "&New chat", w.new_conversation, QKeySequence.StandardKey.New)
    file.addSeparator()
    add_action(w, file, "&Import chats (JSON)…", w.import_files, "Ctrl+O")
    add_action(w, file, "Import a &backup folder…", w.import_folder, "Ctrl+Shift+O")
    file.addSeparator()
    add_action(w, file, "&Export chat as Markdown…", w.export_current, "Ctrl+E")
    add_action(w, file, "Export chat as &JSON…", w.export_current_json, "Ctrl+Shift+E")
    add_action(w, file, "Back &up all chats to a folder…", w.back_up_all, "Ctrl+Shift+B")
    file.addSeparator()
    add_action(w, file, "&Quit", w.shutdown.quit, QKeySequence.StandardKey.Quit)

    chat = menus.addMenu("&Chat")
    stop = add_action(w, chat, "&Stop generating", w.stop, "Esc")
    add_action(w, chat, "&Rename…", w.sidebar.rename_current, "F2")
    add_action(w, chat, "&Delete…", w.delete_current, "Ctrl+Shift+Backspace")
    chat.addSeparator()
    add_action(w, chat, "Re&generate the reply", w.regenerate_current, "Ctrl+R")
    regenerate_with = chat.addMenu("Regenerate &with")
    regenerate_with.aboutToShow.connect(
        lambda: w.chat.replies.fill_models_menu(regenerate_with,
                                                w.chat.replies.target_reply()))
    add_action(w, chat, "&Compare versions…", w.compare_current, "Ctrl+Shift+C")
    add_action(w, chat, "&Previous version", lambda: w.step_version(-1), "Alt+Left")
    add_action(w, chat, "&Next version", lambda: w.step_version(1), "Alt+Right")
    chat.addSeparator()
    add_action(w, chat, "Focus the &message box", w.chat.composer.setFocus, "Ctrl+L")
    add_action(w, chat, "Focus the m&essages", w.chat.message_view.setFocus, "Ctrl+Shift+L")
    add_action(w, chat, "Search &all chats", w.sidebar.focus_search,
               QKeySequence.StandardKey.Find)
    add_action(w, chat, "Chat se&ttings", w.chat.settings_button.toggle, "Ctrl+Shift+S")

    view = menus.addMenu("&View")
    theme_menu = view.addMenu("&Theme")
    group = QActionGroup(w)
    themes: dict[str, QAction] = {}
    for theme, label in THEME_LABELS:
        action = add_action(w, theme_menu, label,
                            lambda _checked=False, t=theme: w.theme.set_theme(t))
        action.setCheckable(True)
        group.addAction(action)
        themes[theme] = action
    view.addSeparator()
    bigger = add_action(w, view, "&Bigger text", lambda: w.theme.zoom(1), "Ctrl+=",
                        QKeySequence.StandardKey.ZoomIn)
    smaller = add_action(w, view, "&Smaller text", lambda: w.theme.zoom(-1), "Ctrl+-",
                         QKeySequence.StandardKey.ZoomOut)
    actual = add_action(w, view, "&Actual size", lambda: w.theme.zoom(0), "Ctrl+0")

    models = menus.addMenu("&Models")
    add_action(w, models, "&Manage models…", w.show_models, "Ctrl+M")
    settings = menus.addMenu("&Settings")
    # Explicit: the platform's "Preferences" key is empty on some Linux desktops.
    add_action(w, settings, "&Preferences…", w.show_preferences, "Ctrl+,")
    w.local_api.add_actions(settings, w.show_local_api_access)
    help_menu = menus.addMenu("&Help")
    add_action(w, help_menu, "&About and diagnostics", w.show_about, "F1")
    return WindowActions(stop, regenerate_with, themes, bigger, smaller, actual)
