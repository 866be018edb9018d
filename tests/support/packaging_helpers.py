"""Helpers shared by the installer tests (a plain module: conftest is not importable)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def load_script(name: str) -> ModuleType:
    """A script of packaging/ (not a package) loaded as a module, for its functions."""
    spec = importlib.util.spec_from_file_location(f"llamadesk_{name}", PACKAGING / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The chat database's passphrase in ``bare_env``.
BARE_PASSPHRASE = "bare environment passphrase"


def bare_env(home: Path) -> dict[str, str]:
    """An environment with no Python in it: no virtualenv, no PYTHONPATH, a PATH of
    system folders only, its own data folder, Qt offscreen. No keychain either, so the
    chat database's key is wrapped by the passphrase in ``home/store-passphrase``."""
    home.mkdir(parents=True, exist_ok=True)
    secret = home / "store-passphrase"
    secret.write_text(BARE_PASSPHRASE + "\n", encoding="utf-8")
    return {
        "LLAMADESK_PASSPHRASE_FILE": str(secret),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LLAMADESK_HOME": str(home / "llamadesk"),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
    }
