"""What a job on the inference service is, as plain data, and the pieces every worker
uses to run one: the model it needs (``ModelSpec``), who hears it (``JobSink``), the
queued job itself, and the batcher that paces streamed text for the GUI.

Light on purpose (no Qt, no llama.cpp): the window, the local API and the command line
name these types without loading Qt's workers or the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from llamadesk.services.backend import RemoteTarget
from llamadesk.services.engine_errors import EngineError
from llamadesk.services.engine_types import GenerationRequest, GenerationResult, LoadOptions

#: How often streamed text is handed to the GUI (seconds). Each batch costs the GUI
#: thread about a millisecond (the slot, the live row's layout and paint) whatever it
#: carries; where llama.cpp runs as many threads as there are cores, that millisecond is
#: taken from one of them and both wait at its barrier, so fewer batches decode faster
#: (docs/performance.md, "Decode: where the rest goes"). 50 ms is still 20 updates a
#: second, the top of the 30-50 ms the design allows.
BATCH_INTERVAL_S = 0.05


class ModelState(StrEnum):
    """What the inference worker is doing."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    GENERATING = "generating"


@dataclass(frozen=True)
class ModelSpec:
    """Which model file to use, and how to load it. ``options.n_gpu_layers`` may be
    ``GPU_LAYERS_AUTOMATIC``: the worker chooses the count when it loads the model."""

    path: str
    model_id: str
    options: LoadOptions
    fallback_format: str = "chatml"
    name: str = ""  # shown to the user; the file's own name when blank
    #: A remote server's model: no file is loaded; the remote worker answers.
    connection: RemoteTarget | None = None

    @property
    def remote(self) -> bool:
        """Whether a remote server writes this model's replies."""
        return self.connection is not None


@dataclass(frozen=True)
class JobEnd:
    """How a job ended, the one final event of every job: its result (finished, or
    stopped: ``result.cancelled``) or the error that ended it, never both."""

    job_id: int
    result: GenerationResult | None = None
    error: EngineError | None = None

    @property
    def outcome(self) -> str:
        """"finished", "cancelled" (stopped, queued or running) or "failed"."""
        if self.error is not None or self.result is None:
            return "failed"
        return "cancelled" if self.result.cancelled else "finished"

    @property
    def reason(self) -> str:
        """Why it failed, readable; "" when it did not."""
        return str(self.error) if self.error is not None else ""


class JobSink(Protocol):
    """Hears a job's progress on the thread that runs it (``job_runner.run_job``): the
    inference service's workers, whose sink turns it into signals, a job submitted from
    a thread without a Qt event loop (the local API's), the command line. Each call must
    return quickly; ``ended`` comes exactly once, last."""

    def started(self) -> None:
        """The prompt is being read."""

    def text(self, piece: str) -> None:
        """More text of the reply."""

    def ended(self, end: JobEnd) -> None:
        """The job's one end: finished, stopped (``end.result.cancelled``) or failed
        (``end.error``; ``ModelLoadError`` when its model would not load)."""


@dataclass(frozen=True)
class GenerateJob:
    """One queued reply: the request, the model it needs, its cancel event, and the
    sink of a job from outside the window (None: the service's signals say it all)."""

    job_id: int
    request: GenerationRequest
    model: ModelSpec | None
    cancel: threading.Event
    sink: JobSink | None = None
    #: Any loaded copy of the same model will do (its load options may differ), so
    #: that a job from outside the window does not reload the window's model.
    reuse_loaded: bool = False


@dataclass(frozen=True)
class EmbedJob:
    """Texts to embed with a model; ``done`` is called on the inference thread with the
    Embeddings or an EngineError."""

    model: ModelSpec
    texts: tuple[str, ...]
    done: Callable[[object], None]


class TextBatcher:
    """Collects streamed text and hands it on at most every BATCH_INTERVAL_S, so the
    GUI sees a few dozen updates a second whatever the token rate."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._parts: list[str] = []
        self._last = 0.0

    def add(self, text: str) -> None:
        """Another piece of the reply; handed on with the pieces before it when due."""
        self._parts.append(text)
        now = time.monotonic()
        if now - self._last >= BATCH_INTERVAL_S:
            self._last = now
            self.flush()

    def flush(self) -> None:
        """Hand on whatever is held."""
        if self._parts:
            text = "".join(self._parts)
            self._parts.clear()
            self._emit(text)
