"""Logging to a rotating file, safe when the process has no console."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def ensure_std_streams() -> None:
    """Give the process usable stdout/stderr. A windowed app on Windows (pythonw, a
    frozen GUI build) has None there, and llama-cpp-python duplicates those file
    descriptors when it silences llama.cpp, which would crash."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        usable = stream is not None
        if usable:
            try:
                stream.fileno()
            except (OSError, ValueError, AttributeError):
                usable = False
        if not usable:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


def setup_logging(log_file: Path, level: int = logging.INFO, console: bool = False) -> None:
    """Log to ``log_file`` (1 MB × 5 files), and to stderr as well when asked."""
    ensure_std_streams()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_llamadesk", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(
        log_file, maxBytes=1_000_000, backupCount=5, encoding="utf-8", delay=True)
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    file_handler._llamadesk = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)
    if console:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        stream_handler.setLevel(logging.WARNING)
        stream_handler._llamadesk = True  # type: ignore[attr-defined]
        root.addHandler(stream_handler)
