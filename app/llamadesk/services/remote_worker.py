"""The inference service's second worker: replies from remote servers.

It runs on a thread of its own, so a remote reply never waits behind, or unloads, the
local model. It emits the inference service's own signals, so the chat controller
cannot tell which worker answered; every job ends with its one final signal,
``generation_ended``, as the local worker's do (both run ``job_runner.run_job``). The
HTTP client is imported with the first remote job (``job_runner.backend_for``), not at
start-up.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Slot

from llamadesk.services.backend import ChatBackend
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.inference_signals import InferenceSignals, SignalSink
from llamadesk.services.job_runner import backend_for, run_job
from llamadesk.services.jobs import GenerateJob, ModelSpec


class RemoteWorker(QObject):
    """Lives on the remote thread; writes one remote reply at a time."""

    def __init__(self, out: InferenceSignals) -> None:
        super().__init__()
        self._out = out

    @Slot(object)
    def generate(self, job: GenerateJob) -> None:
        """Run one remote generation job to its one final signal
        (``job_runner.run_job``)."""
        run_job(job, lambda: backend_for(job.model, _not_remote), SignalSink(self._out, job))


def _not_remote(model: ModelSpec | None) -> ChatBackend:
    raise EngineError(f"{model.model_id if model else 'This model'} is not a remote model.")
