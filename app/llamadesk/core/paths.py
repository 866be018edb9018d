"""Every path the app uses, from one place.

By default the folders follow the platform's conventions (platformdirs). The
environment variable ``LLAMADESK_HOME`` relocates all of them under one folder, for
portable installs and for tests.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_DIR_NAME = "LlamaDesk"
HOME_ENV = "LLAMADESK_HOME"
RESOURCES_ENV = "LLAMADESK_RESOURCES"


@dataclass(frozen=True)
class AppPaths:
    """The folders and files that hold the user's data, settings, models and logs."""

    data_dir: Path
    config_dir: Path
    cache_dir: Path
    log_dir: Path
    models_dir: Path

    @property
    def database(self) -> Path:
        """The SQLite file with conversations and messages."""
        return self.data_dir / "llamadesk.sqlite3"

    @property
    def settings_file(self) -> Path:
        """The JSON file with app-wide settings (never secrets)."""
        return self.config_dir / "settings.json"

    @property
    def log_file(self) -> Path:
        """The rotating log file."""
        return self.log_dir / "llamadesk.log"

    @property
    def crash_dir(self) -> Path:
        """Traces of native crashes (core/crashlog.py), one file per process."""
        return self.log_dir / "crashes"

    @property
    def downloads_dir(self) -> Path:
        """Partial downloads live here until verified, then move into ``models_dir``."""
        return self.models_dir / ".partial"

    def ensure(self) -> AppPaths:
        """Create the folders if they are missing; return self for chaining."""
        for folder in (self.data_dir, self.config_dir, self.cache_dir, self.log_dir,
                       self.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def app_paths(home: str | os.PathLike[str] | None = None) -> AppPaths:
    """Return the app's paths: under ``home`` or ``$LLAMADESK_HOME`` if set, else the
    platform's per-user folders."""
    root = home if home is not None else os.environ.get(HOME_ENV)
    if root:
        base = Path(root).expanduser().resolve()
        return AppPaths(
            data_dir=base / "data",
            config_dir=base / "config",
            cache_dir=base / "cache",
            log_dir=base / "logs",
            models_dir=base / "models",
        )
    dirs = platformdirs.PlatformDirs(APP_DIR_NAME, appauthor=False)
    data = Path(dirs.user_data_dir)
    return AppPaths(
        data_dir=data,
        config_dir=Path(dirs.user_config_dir),
        cache_dir=Path(dirs.user_cache_dir),
        log_dir=Path(dirs.user_log_dir),
        models_dir=data / "models",
    )


def resources_dir() -> Path:
    """The read-only resources folder: inside a frozen bundle, or the source tree's."""
    override = os.environ.get(RESOURCES_ENV)
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return _SOURCE_RESOURCES


# app/llamadesk/core/paths.py -> repository root; resolved once (this file does not move,
# and resolving it walked the path's links at every call: ~0.2 ms, several times a send).
_SOURCE_RESOURCES = Path(__file__).resolve().parents[3] / "resources"


def bundled_models_dir() -> Path:
    """Where the model that ships with the app lives."""
    return resources_dir() / "models"


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when the file at ``path`` is written or replaced (its inode, size,
    and modification and change times), or None when there is no file: the key of a
    cached read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
