"""What the GUI needs from an inference service, as a type.

``InferenceService`` (llama.cpp on its worker thread) is the one implementation in the
app; tests of UI behaviour use a fake with the same surface. Every generation ends with
one final signal, ``generation_ended`` (a ``JobEnd``: the result or the error), always
its last; every load with ``model_loaded`` or ``model_load_failed``.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import SignalInstance

from llamadesk.services.engine_types import GenerationRequest, ModelInfo
from llamadesk.services.jobs import ModelSpec, ModelState


class InferenceApi(Protocol):
    """The surface of an inference service (see ``InferenceService`` for the meaning of
    each signal and method)."""

    state_changed: SignalInstance  # (str) a ModelState value
    model_loaded: SignalInstance  # (ModelInfo)
    model_info_changed: SignalInstance  # (ModelInfo) its chat template was replaced
    model_load_failed: SignalInstance  # (str) a readable reason
    model_unloaded: SignalInstance  # ()
    engine_ready: SignalInstance  # () after prepare(): the engine's modules are imported
    generation_started: SignalInstance  # (int) job id
    token_batch_ready: SignalInstance  # (int, str)
    generation_ended: SignalInstance  # (int, JobEnd) the job's last signal

    state: ModelState
    model_info: ModelInfo | None

    def prepare(self) -> None:
        """Import the engine's modules off the GUI thread; ``engine_ready`` follows."""
        ...

    def load_model(self, spec: ModelSpec) -> None:
        """Load a model (the current one is unloaded first)."""
        ...

    def generate(self, request: GenerationRequest, model: ModelSpec | None = None) -> int:
        """Queue a generation; returns its job id."""
        ...

    def cancel(self, job_id: int | None = None) -> None:
        """Stop a job (default: the one running)."""
        ...

    def cancel_all(self) -> None:
        """Stop the running job and every queued one."""
        ...

    def remote_connection(self, job_id: int) -> str | None:
        """The name of the connection a job's reply comes from; None for a local one."""
        ...

    @property
    def busy(self) -> bool:
        """Whether any job is queued or running."""
        ...

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Cancel everything, free the model and stop the work."""
        ...
