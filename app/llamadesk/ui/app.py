"""Start the GUI: the application object, services, and the main window."""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from llamadesk import APP_NAME, __version__
from llamadesk.core.catalog import CatalogError, ModelCatalog
from llamadesk.core.exit_codes import EXIT_CANNOT_START, EXIT_FAILED, EXIT_OK
from llamadesk.core.paths import app_paths, resources_dir
from llamadesk.core.presets import preset_book
from llamadesk.core.registry import ModelRegistry
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.jobs import ModelState
from llamadesk.services.kv_persist import StoreStates
from llamadesk.services.llama_version import version_problem
from llamadesk.services.remote_models import RemoteModelsService
from llamadesk.services.resolver import ModelResolver
from llamadesk.services.settings import SettingsService
from llamadesk.ui.context import AppContext
from llamadesk.ui.excepthook import install_excepthook
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.quit_signals import install_quit_signals
from llamadesk.ui.store_unlock import unlock_store

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_MS = 30_000

#: For bench/ only: a file to append launch events to (JSON lines, wall-clock seconds),
#: and optionally a message to send as soon as the window is idle.
BENCH_TIMINGS_ENV = "LLAMADESK_BENCH_TIMINGS"
BENCH_SEND_ENV = "LLAMADESK_BENCH_SEND"


def app_icon() -> QIcon:
    """The app's icon, if the resources carry one."""
    icons = resources_dir() / "icons"
    for name in ("llamadesk.svg", "llamadesk.png", "llamadesk-256.png"):
        if (icons / name).is_file():
            return QIcon(str(icons / name))
    return QIcon()


def build_window(app: QApplication) -> MainWindow | None:
    """Open the store, start the services and make the window (None if the data
    cannot be opened; the user has been told why)."""
    paths = app_paths().ensure()
    settings = SettingsService.load(paths.settings_file)
    store = unlock_store(paths)  # asks for a passphrase or a choice where needed
    if store is None:
        return None
    try:
        catalog: ModelCatalog | None = ModelCatalog.load()
    except CatalogError as exc:  # the app still works with what is installed
        log.error("the model catalog is unreadable: %s", exc)
        catalog = None
    registry = ModelRegistry(paths, catalog)
    # The KV state of the chat the model holds at quit is kept for the next launch,
    # beside the chat database and with its key (services/kv_persist.py).
    inference = InferenceService(saved_states=StoreStates(store.another_connection))
    remote_models = RemoteModelsService()
    remote_models.follow(settings.current)
    settings.changed.connect(remote_models.follow)
    resolver = ModelResolver(settings, registry, remote_models.secrets)
    controller = ChatController(store, inference, resolver)
    controller.recover_interrupted()  # replies a crashed run was writing
    # Quitting (and what stops in which order) is window.shutdown's: ui/shutdown.py.
    return MainWindow(AppContext(paths, store, inference, controller, resolver, settings,
                                 registry, ModelNames(), preset_book(paths.config_dir),
                                 remote_models))


def _schedule_screenshot(window: MainWindow, path: str) -> None:
    """Save a picture of the window once the model is ready (or failed), then quit:
    status 0 only when the model loaded and the picture was saved, so that a release
    check taking the screenshot notices a build that cannot load its model.

    The service's own record (``model_info``, ``state``) is polled as well as its
    signals heard: a load that fails at once finishes before anyone here listens."""
    inference = window.inference
    reasons: list[str] = []
    started = time.monotonic()
    poll = QTimer(window)

    def grab() -> None:
        poll.stop()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(path)
        print(f"screenshot {'saved to ' + path if ok else 'FAILED'}", flush=True)
        loaded = inference.model_info is not None
        if not loaded:
            why = reasons[0] if reasons else "no model was loaded (the log says why)"
            print(f"the model failed to load: {why}", file=sys.stderr, flush=True)
        window.shutdown.quit(EXIT_OK if ok and loaded else EXIT_FAILED)

    # The model loads after the first paint: until a load has begun, UNLOADED means
    # "not yet", not "failed".
    began = [inference.state != ModelState.UNLOADED]

    def on_state(state: object) -> None:
        began[0] = began[0] or state == ModelState.LOADING

    def check() -> None:
        settled = (inference.model_info is not None or bool(reasons)
                   or (began[0] and inference.state == ModelState.UNLOADED))
        if settled or time.monotonic() - started > SCREENSHOT_TIMEOUT_MS / 1000:
            poll.stop()
            QTimer.singleShot(300, grab)  # let the window show the outcome first

    inference.model_load_failed.connect(reasons.append)
    inference.state_changed.connect(on_state)
    poll.timeout.connect(check)
    poll.start(200)


def refuse_to_start(message: str, screenshot: str | None = None,
                    argv: list[str] | None = None) -> int:
    """Tell the user in a window why the app cannot run on this computer (the command
    line has said it on stderr; nothing more when taking a screenshot unattended);
    returns the exit status."""
    if not screenshot:
        app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
        app.setApplicationName(APP_NAME)
        QMessageBox.critical(None, APP_NAME, message)
    return EXIT_CANNOT_START


def _record_bench_timings(window: MainWindow, path: str, message: str | None) -> None:
    """Append launch events to ``path`` for the benchmark suite (bench/launch_metrics.py):
    window shown, event loop idle, model loaded, first reply text, reply stored."""
    seen: set[str] = set()

    def event(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        with open(path, "a", encoding="utf-8") as fh:
            # with the process's CPU time so far: on a busy machine the wall clock says
            # little, the CPU the launch took does
            fh.write(json.dumps({"event": name, "t": time.time(), "pid": os.getpid(),
                                 "cpu": time.process_time()}) + "\n")

    def idle() -> None:
        event("window_idle")
        if message:
            window.chat.composer.setPlainText(message)
            window.chat.composer.submit()

    event("window_shown")
    QTimer.singleShot(0, idle)
    window.inference.model_loaded.connect(lambda _info: event("model_loaded"))
    window.controller.reply_text.connect(lambda _cid, _text: event("first_token"))
    window.controller.reply_finished.connect(lambda _cid, _msg: event("reply_finished"))
    window.controller.reply_failed.connect(lambda _cid, reason: event(f"reply_failed: {reason}"))


def collect_from_now_on() -> None:
    """Collect garbage again, as usual, once the window is shown (the event loop's first
    turn). The command line turned collection off for the start-up (cli/main.py); what
    start-up made (modules, classes, the window) lives as long as the app, so it is
    frozen out of every later collection rather than walked by each one (a full
    collection over it took 58-80 ms of CPU here, several frames)."""
    gc.freeze()
    gc.enable()


def show_crash_notice(window: MainWindow, notice: str) -> QMessageBox:
    """Say, without blocking the window, that the last run crashed and where its trace is."""
    box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, notice, parent=window)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.NonModal)  # the app is usable while it shows
    box.show()
    return box


def run_gui(screenshot: str | None = None, argv: list[str] | None = None,
            crash: str | None = None, on_shown: Callable[[], None] | None = None) -> int:
    """Run the app until its window closes; returns the exit status. ``crash``: a
    notice that the last run crashed, shown once the window is up. ``on_shown``: called
    once the window is shown, before its first paint (the command line starts the
    engine's import there)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("llamadesk")
    app.setWindowIcon(app_icon())
    install_excepthook(app_paths().log_file, parent=app)
    problem = version_problem()
    if problem is not None:
        log.error("%s", problem)
        QMessageBox.critical(None, APP_NAME, problem)
        return EXIT_CANNOT_START
    window = build_window(app)
    if window is None:
        return EXIT_FAILED
    window.shutdown.attach(app)  # the window's close (or Quit) ends the app, with a status
    window.show()
    if on_shown is not None:
        on_shown()
    if not gc.isenabled():  # turned off for the start-up by the command line
        QTimer.singleShot(0, collect_from_now_on)
    install_quit_signals(app, window.shutdown.quit)  # SIGINT/SIGTERM: Quit
    if crash is not None:
        show_crash_notice(window, crash)
    if os.environ.get(BENCH_TIMINGS_ENV):
        _record_bench_timings(window, os.environ[BENCH_TIMINGS_ENV],
                              os.environ.get(BENCH_SEND_ENV))
    if screenshot:
        _schedule_screenshot(window, screenshot)
    log.info("%s %s started", APP_NAME, __version__)
    return int(app.exec())
