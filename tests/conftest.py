"""Shared fixtures. Every test runs with its own LLAMADESK_HOME, so nothing touches the
user's real data, and Qt runs offscreen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh LLAMADESK_HOME for each test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("LLAMADESK_HOME", str(folder))
    yield folder


@pytest.fixture(scope="session")
def bundled_model_path() -> Path:
    """The real bundled model. Set-up fetches it; its absence is a failure, not a skip."""
    from llamadesk.core import bundled

    try:
        return bundled.locate().path
    except bundled.BundledModelError as exc:
        pytest.fail(f"{exc} (tests need the real bundled model)")
