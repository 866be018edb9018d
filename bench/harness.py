"""The app, driven from inside: the real window, chat controller and inference service.

``AppHarness`` builds the window exactly as ``llamadesk`` does (``ui.app.build_window``)
under a throwaway ``LLAMADESK_HOME``, then sends messages through the composer and
times what reaches the GUI thread. Every timestamp is taken in a slot connected after
the window's own slots, so it marks the moment the text is already in the message
model.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QTimer, Slot
from PySide6.QtWidgets import QApplication

from llamadesk.core.conversation import FinishReason, Message, SamplingParams
from llamadesk.services.jobs import JobEnd


class BenchError(RuntimeError):
    """The app did not do what the benchmark asked (a failed reply, a timeout)."""


@dataclass
class Reply:
    """What the GUI thread saw of one reply."""

    conversation_id: int
    t_send: float
    t_first: float | None = None  # first text in the message model
    t_last: float | None = None  # last text in the message model
    t_end: float | None = None  # reply_finished (stored) or reply_failed
    t_cancelled: float | None = None  # the inference service's generation_ended, stopped
    first_text: str = ""
    batches: int = 0
    chars: int = 0
    gui_cpu_first: float | None = None  # GUI thread CPU seconds at the first text
    gui_cpu_last: float | None = None
    message: Message | None = None
    failed: str | None = None
    on_text: Callable[[Reply], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ttft_s(self) -> float:
        """Send → first text in the message model."""
        if self.t_first is None:
            raise BenchError("the reply produced no text")
        return self.t_first - self.t_send

    @property
    def completion_tokens(self) -> int:
        return (self.message.stats.completion_tokens or 0) if self.message else 0


class _Recorder(QObject):
    """Timestamps the controller's and service's signals on the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self.reply: Reply | None = None
        self.loop: QEventLoop | None = None

    @Slot(int, str)
    def on_text(self, conversation_id: int, text: str) -> None:
        r = self.reply
        if r is None or conversation_id != r.conversation_id:
            return
        now = time.perf_counter()
        cpu = time.thread_time()
        if r.t_first is None:
            r.t_first = now
            r.first_text = text
            r.gui_cpu_first = cpu
        r.t_last = now
        r.gui_cpu_last = cpu
        r.batches += 1
        r.chars += len(text)
        if r.on_text is not None:
            r.on_text(r)

    @Slot(int, object)
    def on_finished(self, conversation_id: int, message: Message | None) -> None:
        r = self.reply
        if r is None or conversation_id != r.conversation_id:
            return
        r.t_end = time.perf_counter()
        r.message = message
        if self.loop is not None:
            self.loop.quit()

    @Slot(int, str)
    def on_failed(self, conversation_id: int, reason: str) -> None:
        r = self.reply
        if r is None or conversation_id != r.conversation_id:
            return
        r.t_end = time.perf_counter()
        r.failed = reason
        if self.loop is not None:
            self.loop.quit()

    @Slot(int, object)
    def on_ended(self, _job_id: int, end: JobEnd) -> None:
        if end.outcome != "cancelled":
            return
        if self.reply is not None and self.reply.t_cancelled is None:
            self.reply.t_cancelled = time.perf_counter()
        if self.loop is not None:
            self.loop.quit()

    @Slot(object)
    def on_model_ready(self, _info: object) -> None:
        if self.loop is not None:
            self.loop.quit()


def _settled(reply: Reply) -> bool:
    """Stored or failed, and if stopped, the service's cancel seen too: every receiver of
    a worker's signal gets its own queued call, so the controller's and ours may be
    delivered in different turns of the event loop."""
    if reply.t_end is None:
        return False
    if reply.failed is not None:
        return True
    stopped = (reply.message is None
               or reply.message.stats.finish_reason == FinishReason.STOPPED)
    return not stopped or reply.t_cancelled is not None


def qapp() -> QApplication:
    """The one QApplication of the benchmark process."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(["llamadesk-bench"])
    assert isinstance(app, QApplication)
    return app


def wait(ms: int) -> None:
    """Run the event loop for ``ms`` milliseconds (lets queued paints and signals land)."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


class AppHarness:
    """The real window under a throwaway home, with a model loaded and ready."""

    def __init__(self, home: Path, database: Path | None = None,
                 settings: dict[str, Any] | None = None, timeout_s: float = 120) -> None:
        import json

        home.mkdir(parents=True, exist_ok=True)
        os.environ["LLAMADESK_HOME"] = str(home)
        from llamadesk.core.paths import app_paths

        paths = app_paths().ensure()
        if database is not None:
            shutil.copy2(database, paths.database)
        if settings is not None:
            paths.settings_file.write_text(json.dumps(settings), encoding="utf-8")
        from llamadesk.ui.app import build_window

        self.app = qapp()
        self.timeout_s = timeout_s
        self._rec = _Recorder()
        # Connected before the window exists would run first; so build, then connect.
        window = build_window(self.app)
        if window is None:
            raise BenchError("the window could not be built")
        self.window = window
        self.store = window.store
        self.controller = window.controller
        self.inference = window.inference
        self.controller.reply_text.connect(self._rec.on_text)
        self.controller.reply_finished.connect(self._rec.on_finished)
        self.controller.reply_failed.connect(self._rec.on_failed)
        self.inference.generation_ended.connect(self._rec.on_ended)
        self.inference.model_loaded.connect(self._rec.on_model_ready)
        self.inference.model_load_failed.connect(self._rec.on_model_ready)
        window.show()
        self.wait_model()

    # -- plumbing ----------------------------------------------------------------------
    def _run_loop(self, done: Callable[[], bool], what: str) -> None:
        if done():
            return
        loop = QEventLoop()
        self._rec.loop = loop
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(int(self.timeout_s * 1000))
        try:
            while not done():
                if not timer.isActive():
                    raise BenchError(f"timed out waiting for {what}")
                loop.exec()
        finally:
            timer.stop()
            self._rec.loop = None

    def wait_model(self) -> None:
        """Until the preloaded model is ready."""
        self._run_loop(lambda: self.inference.model_info is not None
                       or self.window.chat.banner.isVisible(), "the model to load")
        if self.inference.model_info is None:
            raise BenchError(f"the model did not load: {self.window.chat.banner.label.text()}")

    def close(self) -> None:
        """Close the window and stop the services (as quitting the app does: its own
        sequence, so the writer thread stops, and what it still announces is dropped,
        before the store closes)."""
        self.window.close()
        self.window.shutdown.finish()
        self.window.deleteLater()
        wait(10)

    @property
    def engine(self) -> Any:
        """The worker's engine (only to read llama.cpp's own timings while idle)."""
        return self.inference._worker._engine

    def perf(self) -> dict[str, float]:
        """llama.cpp's own timings of the last reply (read while the worker is idle)."""
        import llama_cpp

        llm = self.engine._llm
        p = llama_cpp.llama_perf_context(llm._ctx.ctx)
        return {"n_p_eval": p.n_p_eval, "t_p_eval_ms": p.t_p_eval_ms,
                "n_eval": p.n_eval, "t_eval_ms": p.t_eval_ms}

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with the loaded model (call only while idle)."""
        return int(self.engine.count_tokens(text))

    # -- conversations -----------------------------------------------------------------
    def new_conversation(self, params: SamplingParams | None = None,
                         system_prompt: str | None = None) -> int:
        """A new chat, opened in the window, with these settings."""
        self.window.new_conversation()
        cid = self.window.current_id
        assert cid is not None
        self.set_params(cid, params, system_prompt)
        return cid

    def set_params(self, cid: int, params: SamplingParams | None = None,
                   system_prompt: str | None = None) -> None:
        """Change a chat's settings as the settings panel would, and show them."""
        if params is not None or system_prompt is not None:
            self.store.update_conversation(cid, params=params, system_prompt=system_prompt)
            if self.window.current_id == cid:
                self.window.open_conversation(cid)

    def select(self, cid: int) -> None:
        """Open a chat as a click in the sidebar does."""
        self.window.select_conversation(cid)
        if self.window.current_id != cid:
            raise BenchError(f"conversation {cid} did not open")

    def send(self, text: str, on_text: Callable[[Reply], None] | None = None,
             before: Callable[[Reply], None] | None = None) -> Reply:
        """Type ``text`` into the composer of the open chat, submit, and wait for the
        reply to be stored (or stopped, or failed)."""
        cid = self.window.current_id
        assert cid is not None
        self.window.chat.composer.setPlainText(text)
        reply = Reply(conversation_id=cid, t_send=0.0, on_text=on_text)
        self._rec.reply = reply
        if before is not None:
            before(reply)
        reply.t_send = time.perf_counter()
        self.window.chat.composer.submit()
        try:
            self._run_loop(lambda: _settled(reply), "a reply")
        finally:
            self._rec.reply = None
        if reply.failed:
            raise BenchError(f"the reply failed: {reply.failed}")
        return reply
