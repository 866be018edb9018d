"""The settings service: the one place that changes and saves the app's settings.

Widgets read ``current`` and hand a changed copy to ``update()``; everyone who cares
(the chat settings panel, the resolver on its next call) sees the new settings through
``current`` or the ``changed`` signal. Nothing else calls ``save_settings``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from llamadesk.core.settings import AppSettings, load_settings, save_settings

log = logging.getLogger(__name__)


class SettingsSaveError(Exception):
    """The settings changed for this session but could not be written to disk; the
    message says where and why."""


class SettingsService(QObject):
    """Holds the app's settings and saves every change.

    Signals:
        changed(AppSettings): the settings are now these (emitted before saving, so a
            failed save still changes the running app).
    """

    changed = Signal(object)

    def __init__(self, path: Path, settings: AppSettings | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._path = path
        self._settings = settings if settings is not None else AppSettings()

    @classmethod
    def load(cls, path: Path, parent: QObject | None = None) -> SettingsService:
        """The settings stored at ``path`` (the defaults if it is missing or damaged)."""
        return cls(path, load_settings(path), parent)

    @property
    def current(self) -> AppSettings:
        """The settings in force."""
        return self._settings

    def update(self, settings: AppSettings) -> None:
        """Make ``settings`` the app's settings and save them.

        Raises SettingsSaveError when the file cannot be written; the new settings apply
        to this session all the same."""
        if settings == self._settings:
            return
        self._settings = settings
        self.changed.emit(settings)
        try:
            save_settings(self._path, settings)
        except OSError as exc:
            log.warning("could not save the settings to %s: %s", self._path, exc)
            reason = exc.strerror or str(exc)
            raise SettingsSaveError(
                f"The settings could not be saved to {self._path} ({reason}). They apply "
                "until LlamaDesk closes.") from exc

    def set_default_model(self, model_id: str | None) -> None:
        """Make ``model_id`` the model of new chats (None: the bundled model)."""
        self.update(replace(self._settings, model_id=model_id))
