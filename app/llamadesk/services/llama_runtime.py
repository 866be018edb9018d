"""llama.cpp as a process-wide runtime, through its public API: its log routed to
Python logging, and what the build supports. The engine (``engine.py``) uses these;
nothing here holds a model. What reaches past the public API is in
``llama_internals``. Only the ctypes bindings are needed (``llama_early.bindings``),
not the package with numpy: the early load and the first send's load options ask
these before the engine's import has ended.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from llamadesk.services.llama_early import bindings
from llamadesk.services.llama_version import installed_version

llama_cpp = bindings()

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


def _c_function_that_does_nothing() -> Any:
    """A llama.cpp log callback in C that ignores its lines: the C library's ``abs``,
    which reads the level (an int) and returns. Taking more arguments than it declares
    is harmless where the caller removes them (the C calling conventions of x86-64,
    AArch64 and Windows x64); None where the C library cannot be found."""
    try:
        libc = ctypes.cdll.msvcrt if sys.platform == "win32" else ctypes.CDLL(None)
        address = ctypes.cast(libc.abs, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None
    return llama_cpp.llama_log_callback(address) if address else None


_say_nothing = _c_function_that_does_nothing()


def silence_llama_log() -> bool:
    """Drop llama.cpp's log lines, in C, until ``install_llama_log_routing``: each line
    through Python needs the interpreter, which the window's start-up holds, so a load
    writing ~1,200 lines (the loader's and its progress dots) waited for it line by line
    (docs/performance.md, "First token (round 7)"). Returns False (nothing changed)
    where no C function for it was found."""
    if _say_nothing is None:
        return False
    llama_cpp.llama_log_set(_say_nothing, ctypes.c_void_p(0))
    return True


INT_ABORT_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    return bool(llama_cpp.llama_supports_gpu_offload())


def system_info() -> str:
    """llama.cpp's own summary of the CPU features and backends it was built with."""
    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", errors="replace").strip()


def build_identity() -> str:
    """What decides llama.cpp's arithmetic beyond the model and the context's settings:
    its version and the build's own summary (the CPU features it uses, its backends), so
    a CUDA build of the same version, a library swapped in, or a data folder moved to
    another CPU are told apart (services/kv_persist.fingerprint)."""
    return f"{llama_cpp_version()}\0{system_info()}"


def llama_cpp_version() -> str:
    """The llama-cpp-python version."""
    return installed_version() or "unknown"
