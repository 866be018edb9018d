"""Versions read from the metadata folders' names equal importlib.metadata's, and the
window's start-up path no longer imports importlib.metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from llamadesk.core.dist_version import version


@pytest.mark.parametrize("name", ["llama-cpp-python", "llama_cpp_python", "PySide6-Essentials",
                                  "llamadesk", "Jinja2", "keyring"])
def test_the_version_equals_importlib_metadata(name: str) -> None:
    assert version(name) == metadata.version(name)


def test_a_missing_distribution_has_no_version() -> None:
    assert version("no-such-distribution-here") is None


def test_the_window_module_imports_without_importlib_metadata() -> None:
    code = ("import sys, llamadesk.ui.app; "
            "print('importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert out.stdout.strip() == "False"
