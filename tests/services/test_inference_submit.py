"""Jobs submitted from a thread without a Qt event loop (the local API's): they report
through a sink on the inference thread, and fail or stop as the window's jobs do."""

from __future__ import annotations

import threading
from pathlib import Path

from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.engine import GenerationRequest, GenerationResult, LoadOptions
from llamadesk.services.inference import InferenceService, ModelLoadError, ModelSpec
from llamadesk.services.jobs import JobEnd


class RecordingSink:
    """Keeps what the worker reports, and the thread it reports on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.threads: set[str] = set()
        self.done = threading.Event()

    def _note(self, kind: str, payload: object = None) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append((kind, payload))

    def started(self) -> None:
        self._note("started")

    def text(self, piece: str) -> None:
        self._note("text", piece)

    def ended(self, end: JobEnd) -> None:
        # The one final call, as "ended" with the result or "failed" with the error.
        if end.error is not None:
            self._note("failed", end.error)
        else:
            self._note("ended", end.result)
        self.done.set()


def ask(text: str) -> GenerationRequest:
    message = Message(id=1, conversation_id=0, parent_id=None, role=Role.USER, content=text,
                      created_at=0.0)
    return GenerationRequest((message,), "", SamplingParams(max_tokens=8, temperature=0),
                             "api")


def submit_from_a_thread(service: InferenceService, spec: ModelSpec,
                         sink: RecordingSink) -> threading.Event:
    out: list[threading.Event] = []
    thread = threading.Thread(target=lambda: out.append(service.submit(ask("Hi"), spec,
                                                                       sink)[1]))
    thread.start()
    thread.join()
    return out[0]


def test_a_model_that_will_not_load_fails_as_a_load_error(qtbot: QtBot,
                                                          tmp_path: Path) -> None:
    service = InferenceService()
    try:
        sink = RecordingSink()
        spec = ModelSpec(str(tmp_path / "missing.gguf"), "missing", LoadOptions(n_ctx=512))
        submit_from_a_thread(service, spec, sink)
        assert sink.done.wait(60)
        (kind, error), = sink.events
        assert kind == "failed" and isinstance(error, ModelLoadError)
        assert "does not exist" in str(error)
    finally:
        service.shutdown()


def test_a_job_streams_to_its_sink_and_can_be_stopped(qtbot: QtBot,
                                                      bundled_model_path: Path) -> None:
    service = InferenceService()
    try:
        spec = ModelSpec(str(bundled_model_path), "bundled", LoadOptions(n_ctx=1024,
                                                                       n_threads=1))
        sink = RecordingSink()
        submit_from_a_thread(service, spec, sink)
        assert sink.done.wait(120)
        kinds = [k for k, _ in sink.events]
        assert kinds[0] == "started" and kinds[-1] == "ended" and "text" in kinds
        result = sink.events[-1][1]
        assert isinstance(result, GenerationResult)
        pieces = "".join(str(p) for k, p in sink.events if k == "text")
        assert pieces.strip() == result.text
        # All on the one worker thread, neither the caller's nor the GUI's.
        assert len(sink.threads) == 1
        assert threading.main_thread().name not in sink.threads
        stopped = RecordingSink()
        cancel = submit_from_a_thread(service, spec, stopped)
        cancel.set()
        assert stopped.done.wait(120)
        final = stopped.events[-1][1]
        assert isinstance(final, GenerationResult) and final.cancelled
    finally:
        service.shutdown()
