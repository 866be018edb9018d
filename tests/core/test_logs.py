"""Logging set-up and usable standard streams in a windowed process."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamadesk.core import logs, paths

ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"

# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The root logger, put back as it was afterwards (setup_logging changes it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # setup_logging may swap streams without a file descriptor; put them back too.
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, "_llamadesk", False)]


def test_setup_logging_writes_to_the_file(root_logger: logging.Logger, home: Path) -> None:
    log_file = paths.app_paths().log_file
    logs.setup_logging(log_file)
    logging.getLogger("llamadesk.test").info("hello from the test %d", 42)
    logging.getLogger("llamadesk.test").debug("too quiet to keep")
    for handler in ours(root_logger):
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "hello from the test 42" in text
    assert "INFO" in text
    assert "llamadesk.test" in text
    assert "too quiet to keep" not in text


def test_setup_logging_twice_keeps_one_file_handler(
        root_logger: logging.Logger, tmp_path: Path) -> None:
    logs.setup_logging(tmp_path / "one" / "a.log")
    logs.setup_logging(tmp_path / "two" / "b.log", level=logging.DEBUG)
    handlers = ours(root_logger)
    assert len(handlers) == 1
    assert root_logger.level == logging.DEBUG
    logging.getLogger("llamadesk.test").debug("debug line")
    handlers[0].flush()
    assert "debug line" in (tmp_path / "two" / "b.log").read_text(encoding="utf-8")
    assert not (tmp_path / "one" / "a.log").exists()  # delay=True: never written


def test_setup_logging_console_adds_a_warning_handler(
        root_logger: logging.Logger, tmp_path: Path) -> None:
    logs.setup_logging(tmp_path / "c.log", console=True)
    handlers = ours(root_logger)
    assert len(handlers) == 2
    console = [h for h in handlers if type(h) is logging.StreamHandler]
    assert len(console) == 1
    assert console[0].level == logging.WARNING


def test_ensure_std_streams_replaces_missing_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    logs.ensure_std_streams()
    replaced = [sys.stdout, sys.stderr]
    try:
        for stream in replaced:
            assert stream is not None
            assert isinstance(stream.fileno(), int)
            os.close(os.dup(stream.fileno()))  # what llama-cpp-python does with it
            stream.write("discarded\n")
            stream.flush()
    finally:
        for stream in replaced:
            if stream is not None:
                stream.close()


def test_ensure_std_streams_replaces_streams_without_a_descriptor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    fake = io.StringIO()
    monkeypatch.setattr(sys, "stdout", fake)
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # put back even if it gets replaced
    logs.ensure_std_streams()
    replacement = sys.stdout
    try:
        assert replacement is not fake
        assert isinstance(replacement.fileno(), int)
    finally:
        replacement.close()


def test_ensure_std_streams_keeps_working_streams(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "out.txt", "w", encoding="utf-8") as out, \
            open(tmp_path / "err.txt", "w", encoding="utf-8") as err:
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        logs.ensure_std_streams()
        assert sys.stdout is out
        assert sys.stderr is err
