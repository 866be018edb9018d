"""Every job ends with one final signal, ``generation_ended``, emitted exactly once and
last, whoever writes the reply (services/job_runner.run_job): the local engine on the
real bundled model (a reply, Stop, an engine error) and remote servers on loopback (a
reply from llama-cpp-python's own server, a failure from a server that stops
answering). Each check first waits for a later job on the same worker, so a second or
a late signal of the first job would have arrived by then."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_fault_server import MODEL, FaultServer
from pytestqt.qtbot import QtBot
from remote_fixtures import SERVED_MODEL, LlamaServer

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import FinishReason, Message, Role, SamplingParams
from llamadesk.core.settings import AppSettings
from llamadesk.services.engine_errors import ContextFullError
from llamadesk.services.engine_types import GenerationRequest, LoadOptions
from llamadesk.services.inference import InferenceService
from llamadesk.services.jobs import JobEnd, ModelSpec
from llamadesk.services.resolver import make_resolver

WAIT_MS = 180_000


def ask(text: str, max_tokens: int = 8) -> GenerationRequest:
    question = Message(1, 1, None, Role.USER, text, 0.0)
    return GenerationRequest((question,), "", SamplingParams(
        max_tokens=max_tokens, seed=5, temperature=0.8, repeat_penalty=1.0, n_ctx=1024))


class JobLog:
    """Every signal that names a job, in the order it arrived on the GUI thread."""

    def __init__(self, service: InferenceService) -> None:
        self.events: list[tuple[str, int, object]] = []
        service.generation_started.connect(lambda j: self.events.append(("started", j, None)))
        service.token_batch_ready.connect(lambda j, t: self.events.append(("text", j, t)))
        service.generation_ended.connect(lambda j, e: self.events.append(("ended", j, e)))

    def ended(self, job: int) -> bool:
        return any(name == "ended" and j == job for name, j, _ in self.events)

    def text(self, job: int) -> str:
        return "".join(str(p) for name, j, p in self.events if name == "text" and j == job)

    def the_end(self, job: int) -> JobEnd:
        """The job's one end, checked to be its last signal."""
        names = [name for name, j, _ in self.events if j == job]
        assert names.count("ended") == 1, names
        assert names[-1] == "ended", names
        (end,) = [p for name, j, p in self.events if name == "ended" and j == job]
        assert isinstance(end, JobEnd) and end.job_id == job
        assert (end.result is None) != (end.error is None), "a result or an error"
        return end


def settled_end(service: InferenceService, log: JobLog, qtbot: QtBot, job: int,
                later: GenerationRequest, model: ModelSpec) -> JobEnd:
    """``job``'s end, read once a later job on the same worker has ended too."""
    qtbot.waitUntil(lambda: log.ended(job), timeout=WAIT_MS)
    after = service.generate(later, model)
    qtbot.waitUntil(lambda: log.ended(after), timeout=WAIT_MS)
    assert log.the_end(after).outcome == "finished"
    return log.the_end(job)


@pytest.fixture
def service(qtbot: QtBot) -> Iterator[InferenceService]:
    svc = InferenceService()
    yield svc
    svc.shutdown()


@pytest.fixture
def spec(bundled_model_path: Path) -> ModelSpec:
    return ModelSpec(str(bundled_model_path), "bundled", LoadOptions(n_ctx=1024, n_threads=2))


def test_a_local_reply_ends_once_after_all_its_text(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    log = JobLog(service)
    job = service.generate(ask("Name three colours.", max_tokens=24), spec)
    end = settled_end(service, log, qtbot, job, ask("Hi."), spec)
    assert end.outcome == "finished" and end.result is not None
    assert end.result.text and end.result.text == log.text(job).strip()
    assert next(n for n, j, _ in log.events if j == job) == "started"


def test_a_stopped_local_reply_ends_once_with_its_partial_text(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    log = JobLog(service)
    job = service.generate(ask("Write a long story about a lighthouse.", max_tokens=2000),
                           spec)
    qtbot.waitUntil(lambda: bool(log.text(job)), timeout=WAIT_MS)
    service.cancel(job)
    end = settled_end(service, log, qtbot, job, ask("Hi."), spec)
    assert end.outcome == "cancelled" and end.result is not None
    assert end.result.stats.finish_reason == FinishReason.STOPPED
    assert end.result.text and log.text(job).startswith(end.result.text)


def test_an_engine_error_ends_the_job_once_with_the_error(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    log = JobLog(service)
    small = ModelSpec(spec.path, spec.model_id, LoadOptions(n_ctx=256, n_threads=2))
    job = service.generate(ask("llama " * 600), small)  # a question longer than the context
    end = settled_end(service, log, qtbot, job, ask("Hi."), small)
    assert end.outcome == "failed" and isinstance(end.error, ContextFullError)
    assert end.reason == str(end.error) and end.reason
    assert log.text(job) == ""


def test_a_remote_reply_ends_once(service: InferenceService, llama_server: LlamaServer,
                                  qtbot: QtBot) -> None:
    settings = AppSettings(connections=(Connection("box", llama_server.url),),
                           remote=RemoteSettings(read_timeout_s=120.0, max_retries=0))
    remote = make_resolver(lambda: settings)(f"box/{SERVED_MODEL}", 1024)
    log = JobLog(service)
    job = service.generate(ask("Name a colour.", max_tokens=16), remote)
    end = settled_end(service, log, qtbot, job, ask("Hi."), remote)
    assert service.remote_connection(job) is None, "forgotten once it ended"
    assert end.outcome == "finished" and end.result is not None
    assert end.result.text == log.text(job).strip()


def test_a_remote_failure_ends_the_job_once_with_the_error(
        service: InferenceService, fault_server: FaultServer, qtbot: QtBot) -> None:
    settings = AppSettings(connections=(Connection("faulty", fault_server.url),),
                           remote=RemoteSettings(read_timeout_s=1.0, max_retries=0))
    remote = make_resolver(lambda: settings)(f"faulty/{MODEL}", 1024)
    log = JobLog(service)
    fault_server.set("hang")
    job = service.generate(ask("Anyone there?"), remote)
    qtbot.waitUntil(lambda: log.ended(job), timeout=WAIT_MS)
    fault_server.set("ok")  # the later job is answered
    end = settled_end(service, log, qtbot, job, ask("Hi."), remote)
    assert end.outcome == "failed" and end.result is None
    assert "did not answer in time" in end.reason
