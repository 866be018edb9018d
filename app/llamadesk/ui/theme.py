"""Light and dark themes, and the chat's text size.

By default the window follows the operating system: Qt reports the system's colour
scheme (``QStyleHints.colorScheme``, and ``colorSchemeChanged`` when the user switches)
and most platforms hand Qt a matching palette. Where the platform's palette does not
match the scheme (some Linux desktops), or the user chose Light or Dark in
Preferences, the app sets a palette of its own. Widgets learn of any change through
their ``PaletteChange`` event; the chat view rebuilds its rendered messages then.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette

from llamadesk.core.settings import (
    MAX_FONT_SIZE,
    MIN_FONT_SIZE,
    THEME_DARK,
    THEME_LIGHT,
    AppearanceSettings,
    AppSettings,
)
from llamadesk.services.settings import SettingsService
from llamadesk.ui.operations import Changes, Operations

log = logging.getLogger(__name__)

_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup


def is_dark(palette: QPalette) -> bool:
    """Whether a palette has light text on a dark background."""
    return (palette.color(_Role.Window).lightness()
            < palette.color(_Role.WindowText).lightness())


def _palette(colors: dict[QPalette.ColorRole, str], disabled: dict[QPalette.ColorRole, str],
             ) -> QPalette:
    palette = QPalette()
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    for role, color in disabled.items():
        palette.setColor(_Group.Disabled, role, QColor(color))
    return palette


def dark_palette() -> QPalette:
    """The app's own dark palette (used where the platform offers none)."""
    return _palette({
        _Role.Window: "#202124", _Role.WindowText: "#e8eaed", _Role.Base: "#17181a",
        _Role.AlternateBase: "#2a2c30", _Role.ToolTipBase: "#2a2c30",
        _Role.ToolTipText: "#e8eaed", _Role.PlaceholderText: "#9aa0a6", _Role.Text: "#e8eaed",
        _Role.Button: "#2d2f33", _Role.ButtonText: "#e8eaed", _Role.BrightText: "#ffffff",
        _Role.Light: "#3c3f44", _Role.Midlight: "#34373b", _Role.Mid: "#26282b",
        _Role.Dark: "#121314", _Role.Shadow: "#000000", _Role.Highlight: "#3b74d4",
        _Role.HighlightedText: "#ffffff", _Role.Link: "#8ab4f8", _Role.LinkVisited: "#c58af9",
    }, {_Role.Text: "#7b7f85", _Role.WindowText: "#7b7f85", _Role.ButtonText: "#7b7f85",
        _Role.HighlightedText: "#9aa0a6"})


def light_palette() -> QPalette:
    """The app's own light palette (used where the platform's is dark)."""
    return _palette({
        _Role.Window: "#efefef", _Role.WindowText: "#1f1f1f", _Role.Base: "#ffffff",
        _Role.AlternateBase: "#f1f3f4", _Role.ToolTipBase: "#ffffdc",
        _Role.ToolTipText: "#1f1f1f", _Role.PlaceholderText: "#6b6f75", _Role.Text: "#1f1f1f",
        _Role.Button: "#efefef", _Role.ButtonText: "#1f1f1f", _Role.BrightText: "#ffffff",
        _Role.Light: "#ffffff", _Role.Midlight: "#cacaca", _Role.Mid: "#b8b8b8",
        _Role.Dark: "#9f9f9f", _Role.Shadow: "#767676", _Role.Highlight: "#308cc6",
        _Role.HighlightedText: "#ffffff", _Role.Link: "#0b57d0", _Role.LinkVisited: "#7e3ff2",
    }, {_Role.Text: "#9e9e9e", _Role.WindowText: "#9e9e9e", _Role.ButtonText: "#9e9e9e",
        _Role.HighlightedText: "#ffffff"})


class ThemeManager(QObject):
    """Applies the appearance settings to the application: the palette (following the
    system unless told otherwise) and the chat's font.

    Signals:
        chat_font_changed(QFont): the chat's text should use this font now.
        problem(str): a change applies but could not be saved; says why.
    """

    chat_font_changed = Signal(QFont)
    problem = Signal(str)

    def __init__(self, app: QGuiApplication, settings: SettingsService,
                 parent: QObject | None = None, ops: Operations | None = None) -> None:
        super().__init__(parent)
        self._app = app
        self._settings = settings
        self._ops = ops if ops is not None else Operations(self)
        self._scheme = app.styleHints().colorScheme()
        self._own_palette = False
        self._applied: AppearanceSettings | None = None
        self.dark = is_dark(app.palette())
        app.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)
        settings.changed.connect(self._on_settings_changed)

    # -- the palette ---------------------------------------------------------------------
    def apply(self) -> None:
        """Apply the settings in force (the palette, then the chat's font)."""
        look = self._settings.current.appearance
        self._apply_palette(look.theme)
        if self._applied is None or look.font_size != self._applied.font_size:
            self.chat_font_changed.emit(self.chat_font())
        self._applied = look

    def wants_dark(self, theme: str, platform_dark: bool) -> bool:
        """Whether ``theme`` means dark now, given the system's scheme and palette."""
        if theme == THEME_DARK:
            return True
        if theme == THEME_LIGHT:
            return False
        if self._scheme == Qt.ColorScheme.Dark:
            return True
        if self._scheme == Qt.ColorScheme.Light:
            return False
        return platform_dark  # the system does not say: its palette does

    def _apply_palette(self, theme: str) -> None:
        if self._own_palette:
            # Back to the platform's palette first: it may itself match the theme now.
            self._app.setPalette(QPalette())
            self._own_palette = False
        platform_dark = is_dark(self._app.palette())
        dark = self.wants_dark(theme, platform_dark)
        if dark != platform_dark:
            self._app.setPalette(dark_palette() if dark else light_palette())
            self._own_palette = True
        if dark != self.dark:
            log.info("theme: %s", "dark" if dark else "light")
        self.dark = dark

    @Slot(Qt.ColorScheme)
    def _on_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        # The scheme comes with the signal: some platforms report the new one there
        # before ``colorScheme()`` does.
        self._scheme = scheme
        self._apply_palette(self._settings.current.appearance.theme)

    @Slot(object)
    def _on_settings_changed(self, settings: AppSettings) -> None:
        if settings.appearance != self._applied:
            self.apply()

    # -- the chat's text size --------------------------------------------------------------
    def chat_font(self) -> QFont:
        """The chat's font: the app's, at the size the user chose."""
        font = QFont(self._app.font())
        size = self._settings.current.appearance.font_size
        if size > 0:
            font.setPointSize(size)
        return font

    def chat_point_size(self) -> int:
        """The chat's text size in points, as shown now."""
        size = self._settings.current.appearance.font_size
        return size if size > 0 else max(QFont(self._app.font()).pointSize(), MIN_FONT_SIZE)

    def zoom(self, step: int) -> None:
        """Make the chat's text ``step`` points bigger (negative: smaller); 0 goes back to
        the system's size. Saved with the settings."""
        size = 0 if step == 0 else min(max(self.chat_point_size() + step, MIN_FONT_SIZE),
                                       MAX_FONT_SIZE)
        if size == self._app.font().pointSize():
            size = 0  # the system's size: follow it if it changes later
        self.set_appearance(replace(self._settings.current.appearance, font_size=size))

    def set_theme(self, theme: str) -> None:
        """Follow the system, or stay light or dark (saved with the settings)."""
        self.set_appearance(replace(self._settings.current.appearance, theme=theme))

    def set_appearance(self, look: AppearanceSettings) -> None:
        """Change and save the appearance settings (a failed save is reported by
        ``problem``: the change applies to this session anyway)."""
        self._ops.run(lambda: self._settings.update(
            replace(self._settings.current, appearance=look.validated())),
            Changes(settings=True), initiator=self, report=self.problem.emit)
