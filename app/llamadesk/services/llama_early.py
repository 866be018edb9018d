"""llama.cpp's ctypes bindings alone, and the model's load started with only them.

``import llama_cpp.llama_cpp`` runs the package's ``__init__`` first, which imports the
high-level ``Llama`` with numpy, diskcache and Jinja2 (~0.15 s of CPU). llama.cpp's load
of a model needs only the bindings (``llama_cpp/llama_cpp.py``, ~35 ms): ``bindings()``
loads that file and its one helper under their own names without the package, so a
later ``import llama_cpp`` finds them in ``sys.modules`` and uses the same library
handle (as ``core/gguf_constants.py`` does for gguf). Where that cannot be done (the
package is not a plain folder), the ordinary import runs instead.

``load_early`` loads a model file through them on the calling thread (the engine's
early import, ``services/engine_import.py``); llama.cpp's load runs in C without the
interpreter, beside the window's imports. ``take`` hands the loaded model to the
engine's ``Llama`` (``llama_internals.new_llama``) when the engine loads the same file
with the same model parameters, waiting for a load still under way; a load of another
file frees it (``discard``). The model's context is made by the ``Llama`` as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

_PARTS = (("llama_cpp._ctypes_extensions", "_ctypes_extensions.py"),
          ("llama_cpp.llama_cpp", "llama_cpp.py"))
_bindings_lock = threading.Lock()
#: llama.cpp's own load, kept at the first ``bindings()``: the early load calls it, not
#: the stand-in that a ``Llama`` being made meanwhile sees (llama_internals).
_load_from_file: Any = None


def bindings() -> ModuleType:
    """llama-cpp-python's ctypes bindings (``llama_cpp.llama_cpp``), loaded without the
    package's ``__init__`` unless it was imported already."""
    global _load_from_file
    with _bindings_lock:
        module = _find_bindings()
        if _load_from_file is None:  # before llama_internals swaps it while a Llama is made
            _load_from_file = module.llama_model_load_from_file
        return module


def finished_module(name: str) -> ModuleType | None:
    """Module ``name`` if it is in ``sys.modules``, once it is whole: another thread's
    import (the engine's, ``import llama_cpp``) puts it there before it has run, and a
    half-made module lacks the names defined after the point reached; the import
    system waits for that import to end."""
    if name not in sys.modules:
        return None
    return importlib.import_module(name)


def _find_bindings() -> ModuleType:
    loaded = finished_module("llama_cpp.llama_cpp")
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("llama_cpp")  # finds the package, runs nothing
    folders = list(package.submodule_search_locations or []) if package else []
    if not folders or not all((Path(folders[0]) / f).is_file() for _, f in _PARTS):
        return importlib.import_module("llama_cpp.llama_cpp")
    for name, file in _PARTS:
        if finished_module(name) is None:
            _load_alone(name, Path(folders[0]) / file)
    # The one kept: this thread's, or the package's import's if it came first.
    whole = finished_module("llama_cpp.llama_cpp")
    assert whole is not None  # _load_alone put one there
    return whole


def _load_alone(name: str, path: Path) -> None:
    """Run ``path`` as module ``name`` and only then put it in ``sys.modules``: another
    thread importing the package meanwhile sees no half-made module (it loads its own,
    and that one is kept)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        importlib.import_module(name)
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.setdefault(name, module)


def model_params(n_gpu_layers: int) -> Any:
    """The model parameters ``Llama(n_gpu_layers=…)`` passes to llama.cpp with the
    engine's other arguments left as they are (memory-mapped, no overrides)."""
    b = bindings()
    params = b.llama_model_default_params()
    params.n_gpu_layers = 0x7FFFFFFF if n_gpu_layers == -1 else n_gpu_layers
    params.load_mode = b.LLAMA_LOAD_MODE_MMAP
    return params


def same_params(a: Any, b: Any) -> bool:
    """Whether two ``llama_model_params`` ask for the same load: equal values, and no
    pointer (devices, overrides, callbacks) set in either."""
    for name, _type in type(a)._fields_:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, int | float | bool) or x is None:
            if x != y:
                return False
        elif x or y:  # a pointer set: not a load this module makes
            return False
    return True


@dataclass
class _Early:
    path: str
    params: Any
    gpu_layers: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    model: Any = None  # the llama_model pointer, until taken or freed
    wanted: bool = True  # False: another file was loaded meanwhile; free it when done
    seconds: float = 0.0


_lock = threading.Lock()
_early: _Early | None = None
#: Models handed to a ``Llama`` so far (the tests and the bench read it).
adopted = 0


def load_early(path: str, n_gpu_layers: int,
               before_c_load: Callable[[], None] = lambda: None) -> bool:
    """Load the model file at ``path`` now, on this thread, for the engine to take;
    returns whether it loaded. The file's header is checked first, as the engine's load
    does (llama.cpp trusts its counts); a file that fails is left for the engine's load
    to report. ``before_c_load`` is called just before llama.cpp's load (after this
    thread's Python). Once per process."""
    global _early
    from llamadesk.core.gguf_checked import validate_gguf_once
    from llamadesk.core.paths import app_paths

    with _lock:
        if _early is not None:
            return False
        early = _early = _Early(path, None, n_gpu_layers)
    try:
        validate_gguf_once(Path(path), app_paths().cache_dir)
        b = bindings()  # (llama.cpp's log is routed by the caller: llama_runtime)
        b.llama_backend_init()
        early.params = model_params(n_gpu_layers)
        before_c_load()
        started = time.perf_counter()
        model = _load_from_file(path.encode("utf-8"), early.params)
        early.seconds = time.perf_counter() - started
    except Exception as exc:  # the engine's load reports what is wrong with the file
        log.info("no early load of %s: %s: %s", Path(path).name, type(exc).__name__, exc)
        model = None
    with _lock:
        early.model = model or None
        if early.model is not None and not early.wanted:
            _free(early)
        early.done.set()
    if early.model is not None:
        log.info("loaded %s early in %.2fs", Path(path).name, early.seconds)
    return early.model is not None


def take(path: str, params: Any) -> Any:
    """The early-loaded model of ``path`` if it was loaded with ``params`` (waiting for a
    load under way), else None. The caller owns what it gets; anything else loaded early
    is freed, now or when its load ends."""
    global adopted
    early = _closed_or_current()
    if early is None:
        return None
    # Another file (the restored chat's model is not a new chat's): a load on the CPU
    # runs on beside this one and is freed when it ends; one that offloads layers is
    # waited for, so that the two do not compete for the GPU's memory.
    if early.path == path or early.gpu_layers != 0:
        early.done.wait()
    with _lock:
        model = early.model
        if model is not None and early.path == path and same_params(early.params, params):
            early.model = None
            adopted += 1
            return model
    discard()
    return None


def discard() -> None:
    """Free the early-loaded model unless the engine took it (a load under way is freed
    when it ends)."""
    early = _closed_or_current()
    if early is None:
        return
    with _lock:
        early.wanted = False
        if early.done.is_set():
            _free(early)


def _closed_or_current() -> _Early | None:
    """The early load, or None when there was none; then none may start any more: a
    load that began after the engine had loaded its model would be taken by nobody."""
    global _early
    with _lock:
        if _early is None:
            _early = _Early("", None, wanted=False)
            _early.done.set()
            return None
        return _early


def _free(early: _Early) -> None:
    if early.model is not None:
        bindings().llama_model_free(early.model)
        early.model = None
        log.info("freed the early-loaded %s", Path(early.path).name)


def forget_for_tests() -> None:
    """Free what was loaded early and allow another early load (tests only)."""
    global _early, adopted
    discard()
    with _lock:
        _early = None
        adopted = 0
