"""Import the engine's modules (llama-cpp-python with numpy: ~0.2 s of CPU) on a thread
of their own, started as soon as the window is shown (``cli/main.py``, through
``run_gui``'s ``on_shown``); first, with only llama.cpp's bindings imported, start
loading the model a new chat is answered with (``services/llama_early.py``), which the
engine then takes.

Not beside the window's imports or its construction: both are Python holding the
interpreter, so side by side each waited for the other (docs/performance.md,
"Start-up (round 5)"). llama.cpp's load itself runs in C, without the interpreter.
The inference thread's ``prepare()`` then finds the modules imported (or waits for
this import to finish; Python's import lock sees to that) and reports a failure
itself, so nothing is reported here. This module imports neither llama.cpp nor numpy
nor psutil itself."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: "0": import the engine after the first paint only, as the inference thread does (the
#: start-up import test, which lists what the GUI thread itself needs).
EARLY_ENV = "LLAMADESK_ENGINE_EARLY"
THREAD_NAME = "engine-import"
#: "0": import the engine early, but load no model before the window asks for one.
EARLY_LOAD_ENV = "LLAMADESK_MODEL_EARLY"
LOAD_THREAD_NAME = "model-early"
#: Added to the early load's niceness (Linux): the window's thread wins a contested core.
LOAD_NICENESS = 10
EARLY_NICE_ENV = "LLAMADESK_MODEL_EARLY_NICE"

_thread: threading.Thread | None = None


def start_early() -> bool:
    """Start importing the engine now, once per process; returns whether it started
    (not when ``LLAMADESK_ENGINE_EARLY=0``). Not a daemon thread: a window closed at
    once waits for the import to end (under a second) rather than cutting a C
    extension's set-up short at exit."""
    global _thread
    if _thread is not None or os.environ.get(EARLY_ENV) == "0":
        return False
    _thread = threading.Thread(target=_import_engine, name=THREAD_NAME)
    _thread.start()
    return True


def started() -> bool:
    """Whether ``start_early`` started the import in this process."""
    return _thread is not None


def model_to_load_first() -> tuple[str, int] | None:
    """The file and GPU layers of the model a new chat is answered with (the resolver's
    default-model rule, from the settings file), or None when that is a remote model,
    GPU offload is Automatic (sized when the engine loads), or it cannot be resolved
    (the window's own load says why)."""
    from llamadesk.core.paths import app_paths
    from llamadesk.core.registry import ModelRegistry
    from llamadesk.core.settings import load_settings
    from llamadesk.services.fit_check import GPU_LAYERS_AUTOMATIC
    from llamadesk.services.resolver import make_resolver

    paths = app_paths()
    settings = load_settings(paths.settings_file)
    try:
        spec = make_resolver(lambda: settings, ModelRegistry(paths))(None)
    except LookupError as exc:
        log.info("no early load: %s", exc)
        return None
    if spec.connection is not None or spec.options.n_gpu_layers == GPU_LAYERS_AUTOMATIC:
        return None
    return spec.path, spec.options.n_gpu_layers


def _start_early_load() -> threading.Thread | None:
    """Start llama.cpp's load of the model the window will ask for on a thread of its
    own, with only the bindings imported (services/llama_early.py): it runs in C, without
    the interpreter, beside the engine's and the window's imports, and the engine's
    ``Llama`` takes the loaded model (docs/performance.md, "Start-up")."""
    try:
        first = model_to_load_first()
        if first is None:
            return None
        from llamadesk.services.llama_early import load_early
        from llamadesk.services.llama_runtime import install_llama_log_routing

        install_llama_log_routing()  # llama.cpp's lines go to the log, not to stderr
        loader = threading.Thread(target=_load_behind_the_window, args=(load_early, *first),
                                  name=LOAD_THREAD_NAME)
        loader.start()
        return loader
    except Exception as exc:  # the engine loads the model itself, and reports
        log.warning("no early load: %s: %s", type(exc).__name__, exc)
        return None


def _load_behind_the_window(load: Callable[[str, int], bool], path: str,
                            n_gpu_layers: int) -> None:
    """``load(path, n_gpu_layers)`` at a lower priority where the system allows one
    thread's (Linux): on two cores the load would otherwise take CPU from the window's
    start-up, which the first token waits for too."""
    if os.environ.get(EARLY_NICE_ENV) != "0" and sys.platform.startswith("linux"):
        try:
            thread = threading.get_native_id()
            niceness = os.getpriority(os.PRIO_PROCESS, thread) + LOAD_NICENESS
            os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness))
        except OSError:  # not allowed here: it loads at the usual priority
            pass
    load(path, n_gpu_layers)


def _import_engine() -> None:
    # The first prompt's decode threads look at the machine's load since now (cpu_load).
    from llamadesk.services.cpu_load import note_launch

    note_launch()
    loader = _start_early_load() if os.environ.get(EARLY_LOAD_ENV) != "0" else None
    try:
        importlib.import_module("llamadesk.services.engine")
        if loader is not None:
            # llama_cpp's package import set its own log callback (stderr) while the
            # early load may still write its lines: they go to the log again.
            from llamadesk.services.llama_runtime import install_llama_log_routing

            install_llama_log_routing()
        # A message sent at once builds its load options on the GUI thread, which asks
        # psutil for the cores (~20 ms to import): imported here, that is a lookup there.
        importlib.import_module("psutil")
    except Exception as exc:  # prepare() imports it again and reports why it fails
        # Logged here too: a second try after a C extension half set itself up can fail
        # another way, and this first reason is the one that says what is wrong.
        log.warning("the engine's early import failed: %s: %s", type(exc).__name__, exc)
    if loader is not None:  # this thread ends after the load: the exit waits for both
        loader.join()


def leave_if_still_importing(status: int, timeout: float = 10.0) -> None:
    """At the process's end: wait up to ``timeout`` seconds for the early import, then,
    were it still running (a library's set-up hanging), end the process with ``status``
    at once rather than wait on it for ever. Runs after everything the app keeps is
    closed (as ``worker.leave_now_if_abandoned``)."""
    thread = _thread
    if thread is None:
        return
    thread.join(timeout)
    if not thread.is_alive():
        return
    log.error("the engine's import did not end within %.0f s; leaving without it", timeout)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)
