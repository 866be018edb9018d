"""The window's fixtures (tests/support/window_fixtures.py), and a clean application
palette and font after every test (a theme test changes them for the whole app)."""

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication
from window_fixtures import fake_window, real_window  # noqa: F401


@pytest.fixture(autouse=True)
def app_appearance(qapp: QApplication) -> Iterator[None]:
    """Whatever a test did to the app's palette or font is undone after it."""
    font = QFont(qapp.font())
    yield
    qapp.setPalette(QPalette())
    qapp.setFont(font)
