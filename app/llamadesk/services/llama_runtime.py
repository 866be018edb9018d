"""llama.cpp as a process-wide runtime: its log routed to Python logging, what the
build supports, and loading a model without llama-cpp-python's own template step.
The engine (``engine.py``) uses these; nothing here holds a model.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import llama_cpp
import llama_cpp.llama_chat_format as llama_chat_format

llama_log = logging.getLogger("llama.cpp")

# ggml levels: 1 debug, 2 info (very chatty while loading), 3 warn, 4 error, 5 continue.
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_last_level = logging.DEBUG


@llama_cpp.llama_log_callback
def _route_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    # llama.cpp talks a lot at INFO while loading; keep that out of the log unless
    # debugging, and route warnings and errors to our log file instead of stderr.
    global _last_level
    py_level = _last_level if level == 5 else _LEVELS.get(level, logging.DEBUG)
    _last_level = py_level
    if llama_log.isEnabledFor(py_level):
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            llama_log.log(py_level, "%s", message)


def install_llama_log_routing() -> None:
    """Send llama.cpp's own log lines to Python logging."""
    llama_cpp.llama_log_set(_route_llama_log, ctypes.c_void_p(0))


INT_ABORT_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _UnusedChatFormatter:
    """Stands in for llama-cpp-python's template compiler while a model loads."""

    def __init__(self, **_kwargs: object) -> None:
        pass

    def to_chat_handler(self) -> None:
        return None


_LOAD_LOCK = threading.Lock()


@contextmanager
def without_llama_cpp_templates() -> Iterator[None]:
    """llama-cpp-python compiles every chat template in a file's metadata while loading,
    unbounded, and one that does not compile fails the whole load. LlamaDesk renders
    templates itself (core.chat_format, budgeted, with a fallback), so that step is
    skipped."""
    with _LOAD_LOCK:
        original = llama_chat_format.Jinja2ChatFormatter
        llama_chat_format.Jinja2ChatFormatter = _UnusedChatFormatter  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            llama_chat_format.Jinja2ChatFormatter = original  # type: ignore[misc]


def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    return bool(llama_cpp.llama_supports_gpu_offload())


def system_info() -> str:
    """llama.cpp's own summary of the CPU features and backends it was built with."""
    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", errors="replace").strip()


def llama_cpp_version() -> str:
    """The llama-cpp-python version."""
    return str(getattr(llama_cpp, "__version__", "unknown"))
