"""Helpers shared by the installer tests (a plain module: conftest is not importable)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def bare_env(home: Path) -> dict[str, str]:
    """An environment with no Python in it: no virtualenv, no PYTHONPATH, a PATH of
    system folders only, its own data folder, Qt offscreen."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LLAMADESK_HOME": str(home / "llamadesk"),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
    }
