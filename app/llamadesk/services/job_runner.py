"""The one job runner: a reply written by a backend, local or remote, to its one end.

The window's jobs (through ``InferenceService``, on its workers' threads), the local
API's (submitted to the same service) and the command line's all run here, so each
ends the same way: ``started``, pieces of text, then exactly one ``ended`` carrying the
result (finished or stopped) or the error, always last. Which backend answers a model,
the local engine or a remote server, is decided here too (``backend_for``).

No Qt: the workers wrap it in signals, the command line calls it directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import stopped_result
from llamadesk.services.jobs import GenerateJob, JobEnd, JobSink, ModelSpec

if TYPE_CHECKING:
    from llamadesk.services.backend import ChatBackend

log = logging.getLogger(__name__)


def runs_remotely(model: ModelSpec | None) -> bool:
    """Whether a remote server writes this model's replies (else the local engine)."""
    return model is not None and model.connection is not None


def backend_for(model: ModelSpec | None,
                local: Callable[[ModelSpec | None], ChatBackend]) -> ChatBackend:
    """The backend that answers with ``model``: a remote server's, for a model of a
    connection, else what ``local`` gives (the engine, with the model loaded)."""
    if runs_remotely(model):
        assert model is not None and model.connection is not None
        from llamadesk.services.remote_engine import RemoteEngine

        return RemoteEngine(model.connection)
    return local(model)


def run_job(job: GenerateJob, open_backend: Callable[[], ChatBackend],
            sink: JobSink) -> JobEnd:
    """Run ``job`` to its one end: ``sink.started()`` once the backend is ready, its
    text as it comes, then ``sink.ended()`` exactly once, last, with the result (also
    when stopped, queued or running) or the error. A job cancelled before it starts
    never opens its backend. Returns the end."""
    if job.cancel.is_set():
        end = JobEnd(job.job_id, result=stopped_result(job.model.model_id if job.model else ""))
    else:
        end = _run(job, open_backend, sink)
    sink.ended(end)
    return end


def _run(job: GenerateJob, open_backend: Callable[[], ChatBackend], sink: JobSink) -> JobEnd:
    try:
        backend = open_backend()
        sink.started()
        result = backend.generate(job.request, sink.text, job.cancel)
    except EngineError as exc:
        log.error("generation %d failed: %s", job.job_id, exc)
        return JobEnd(job.job_id, error=exc)
    except Exception as exc:  # a bug must not kill the thread that runs jobs
        log.exception("unexpected error in generation %d", job.job_id)
        return JobEnd(job.job_id, error=EngineError(f"Unexpected error while generating: {exc}"))
    return JobEnd(job.job_id, result=result)
