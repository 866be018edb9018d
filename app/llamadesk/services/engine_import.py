"""Import the engine's modules (llama-cpp-python with numpy: ~0.2 s of CPU) on a thread
of their own, started as soon as the window is shown (``cli/main.py``, through
``run_gui``'s ``on_shown``); first, with only llama.cpp's bindings imported, start
loading the model of the chat the window shows first (``services/llama_early.py``),
which the engine then takes.

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llamadesk.core.conversation import Conversation

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

#: OpenBLAS's threads (numpy's), unless the environment sets them.
BLAS_THREADS_ENV = "OPENBLAS_NUM_THREADS"
#: What numpy's import sets itself for OpenBLAS's set-up, and removes again after it.
BLAS_MAIN_FREE_ENV = "OPENBLAS_MAIN_FREE"

_thread: threading.Thread | None = None
#: The chat the window shows first, as the window chose it (``show_first``).
_first_chat: Conversation | None = None
#: Whether the early load is in llama.cpp now (its lines are dropped meanwhile).
_loading = False
_log_lock = threading.Lock()


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


def limit_blas_threads() -> None:
    """numpy (llama_cpp imports it) starts OpenBLAS with a thread per core, and those spin
    while it sets up: ~35 ms of CPU taken from the window and the first prompt on two
    cores. Nothing in the app uses BLAS (numpy serves logits and sorting), so one, unless
    the environment says otherwise. Called at the process's start, before Qt or any
    thread: ``setenv`` beside another thread's ``getenv`` (Qt, fontconfig) is unsafe.

    For the same reason ``OPENBLAS_MAIN_FREE=1`` is set here: numpy's import otherwise
    sets it with ``putenv`` and removes it with ``unsetenv``, on the engine's import
    thread, beside the window's and the early load's threads (glibc may free the
    environment array that another thread's ``getenv`` is reading)."""
    os.environ.setdefault(BLAS_THREADS_ENV, "1")
    os.environ.setdefault(BLAS_MAIN_FREE_ENV, "1")


def started() -> bool:
    """Whether ``start_early`` started the import in this process."""
    return _thread is not None


def show_first(conversation: Conversation | None) -> None:
    """The window shows ``conversation`` first (None: a new chat), so the early load
    loads its model; the window's restore decides which chat (``ui/main_window.py``),
    before it is shown and so before the early load starts."""
    global _first_chat
    _first_chat = conversation


def model_to_load_first() -> tuple[str, int] | None:
    """The file and GPU layers of the model that answers the chat the window shows first
    (``show_first``; with none named, a new chat's: the resolver's default-model rule,
    from the settings file), or None when that is a remote model, GPU offload is
    Automatic (sized when the engine loads), or it cannot be resolved (the window's own
    load says why)."""
    from llamadesk.core.paths import app_paths
    from llamadesk.core.registry import ModelRegistry
    from llamadesk.core.settings import load_settings
    from llamadesk.services.fit_check import GPU_LAYERS_AUTOMATIC
    from llamadesk.services.resolver import make_resolver

    paths = app_paths()
    settings = load_settings(paths.settings_file)
    try:
        spec = make_resolver(lambda: settings, ModelRegistry(paths)).chat_spec(_first_chat)
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
        loader = threading.Thread(target=_load_early, args=first, name=LOAD_THREAD_NAME)
        loader.start()
        return loader
    except Exception as exc:  # the engine loads the model itself, and reports
        log.warning("no early load: %s: %s", type(exc).__name__, exc)
        return None


def _load_early(path: str, n_gpu_layers: int) -> None:
    """The early load, its C part behind the window's thread (``lower_this_threads_
    priority``); llama.cpp's lines are dropped in C while it loads: through Python each
    of them (~1,200: the loader's and its progress dots) waited for the interpreter,
    which the engine's import and the window hold (docs/performance.md, "First token
    (round 7)"). A failure is the engine's load's to report."""
    global _loading
    from llamadesk.services.llama_early import load_early

    with _log_lock:
        _loading = True
        _route_llama_log()
    try:
        load_early(path, n_gpu_layers, before_c_load=lower_this_threads_priority)
    finally:
        with _log_lock:
            _loading = False
            _route_llama_log()


def _route_llama_log() -> None:
    """llama.cpp's lines to the log (not to stderr, where llama_cpp's package import
    sends them), or nowhere while the early load runs (under ``_log_lock``)."""
    from llamadesk.services.llama_runtime import install_llama_log_routing, silence_llama_log

    if not (_loading and silence_llama_log()):
        install_llama_log_routing()


def lower_this_threads_priority() -> None:
    """Give the calling thread a niceness ``LOAD_NICENESS`` higher (Linux): on two cores
    llama.cpp's load would otherwise take CPU from the window's start-up, which the
    first token waits for too. Only for C: a thread niced while it runs Python holds
    the interpreter that the window's thread waits for whenever the system runs the
    niced one less (it is not set back: the thread ends after the load)."""
    if os.environ.get(EARLY_NICE_ENV) != "0" and sys.platform.startswith("linux"):
        try:
            thread = threading.get_native_id()
            niceness = os.getpriority(os.PRIO_PROCESS, thread) + LOAD_NICENESS
            os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness))
        except OSError:  # not allowed here: it loads at the usual priority
            pass


def _import_engine() -> None:
    # The first prompt's decode threads look at the machine's load since now (cpu_load).
    from llamadesk.services.cpu_load import note_launch

    note_launch()
    loader = _start_early_load() if os.environ.get(EARLY_LOAD_ENV) != "0" else None
    # The package's import sets a log callback of its own that prints every line to
    # stderr until a Llama(verbose=False) quiets it; the early load may write its lines
    # meanwhile. Quiet from the start, as every Llama the engine makes sets it.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    try:
        importlib.import_module("llamadesk.services.engine")
        if loader is not None:
            # llama_cpp's package import set its own log callback (stderr) while the
            # early load may still write its lines: they go to the log again.
            with _log_lock:
                _route_llama_log()
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
