"""The window's fixtures (tests/support/window_fixtures.py)."""

from window_fixtures import fake_window, real_window  # noqa: F401
