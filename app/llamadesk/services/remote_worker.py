"""The inference service's second worker: replies from remote servers.

It runs on a thread of its own, so a remote reply never waits behind, or unloads, the
local model. It emits the inference service's own signals, so the chat controller
cannot tell which worker answered; every job ends with exactly one of finished,
cancelled or failed. The HTTP client is imported here, on first use, not at start-up.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Slot

from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import stopped_result
from llamadesk.services.inference_signals import InferenceSignals
from llamadesk.services.jobs import GenerateJob, TextBatcher

log = logging.getLogger(__name__)


class RemoteWorker(QObject):
    """Lives on the remote thread; writes one remote reply at a time."""

    def __init__(self, out: InferenceSignals) -> None:
        super().__init__()
        self._out = out

    @Slot(object)
    def generate(self, job: GenerateJob) -> None:
        """Run one remote generation job to its one final signal."""
        out = self._out
        target = job.model.connection if job.model is not None else None
        if job.cancel.is_set() or target is None:
            out.generation_cancelled.emit(
                job.job_id, stopped_result(job.model.model_id if job.model else ""))
            return
        try:
            from llamadesk.services.remote_engine import RemoteEngine

            out.generation_started.emit(job.job_id)
            batcher = TextBatcher(lambda text: out.token_batch_ready.emit(job.job_id, text))
            result = RemoteEngine(target).generate(job.request, batcher.add, job.cancel)
            batcher.flush()
        except EngineError as exc:
            log.error("remote generation %d failed: %s", job.job_id, exc)
            out.generation_failed.emit(job.job_id, str(exc))
            return
        except Exception as exc:  # a bug must not kill the worker thread
            log.exception("unexpected error in remote generation %d", job.job_id)
            out.generation_failed.emit(job.job_id, f"Unexpected error while generating: {exc}")
            return
        if result.cancelled:
            out.generation_cancelled.emit(job.job_id, result)
        else:
            out.generation_finished.emit(job.job_id, result)
