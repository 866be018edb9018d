"""Fixtures for the installer tests: one build, reused by every test.

These tests are slow (a PyInstaller build, a .deb installed into this machine), so they
run as their own CI step, ``python3 packaging/check.py``, which builds once and points
LLAMADESK_PACKAGING_OUT at the result. The ordinary test run deselects them (they are
not skipped: they run, in that step); select them with ``-m packaging`` (without
LLAMADESK_PACKAGING_OUT the fixture builds itself).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging_helpers import PACKAGING, ROOT

OUT_ENV = "LLAMADESK_PACKAGING_OUT"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the packaging tests to their own CI step unless ``-m packaging`` asks."""
    if "packaging" in (config.getoption("-m") or ""):
        return
    kept = [item for item in items if not item.get_closest_marker("packaging")]
    if len(kept) != len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if item.get_closest_marker("packaging")])
        items[:] = kept


@pytest.fixture(scope="session")
def build_script() -> ModuleType:
    """packaging/build.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("llamadesk_packaging_build",
                                                  PACKAGING / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def packaging_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder with this OS's build: sizes.json, the installer, the screenshot."""
    given = os.environ.get(OUT_ENV)
    if given:
        out = Path(given)
        if not (out / "sizes.json").is_file():
            pytest.fail(f"{OUT_ENV}={out} holds no sizes.json: run packaging/build.py first")
        return out
    out = tmp_path_factory.mktemp("packaging")
    subprocess.run([sys.executable, str(PACKAGING / "build.py"), "--out", str(out),
                    "--deb-compression", "gzip"], check=True, cwd=ROOT)
    return out


@pytest.fixture(scope="session")
def sizes(packaging_out: Path) -> dict[str, Any]:
    """What build.py recorded: paths and sizes of the bundle and the installer."""
    data: dict[str, Any] = json.loads((packaging_out / "sizes.json").read_text("utf-8"))
    return data


@pytest.fixture(scope="session")
def bundle(sizes: dict[str, Any]) -> Path:
    """The frozen one-folder bundle."""
    path = Path(sizes["bundle"]["path"])
    assert path.is_dir(), f"the bundle is gone: {path}"
    return path

