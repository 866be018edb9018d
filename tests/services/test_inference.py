"""The inference service on the real bundled model, through real llama.cpp."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import FinishReason, Message, Role, SamplingParams
from llamadesk.services.engine import GenerationRequest, GenerationResult, LoadOptions
from llamadesk.services.fit_check import GPU_LAYERS_AUTOMATIC
from llamadesk.services.gpu_probe import probe_gpus
from llamadesk.services.inference import InferenceService, ModelSpec, ModelState

LONG = SamplingParams(temperature=0.8, max_tokens=48, seed=7, repeat_penalty=1.0)
# Generous: the machine may be shared; the benchmark suite measures real speed.
WAIT_MS = 180_000


def ask(text: str, conversation_key: str | None = None,
        params: SamplingParams = LONG) -> GenerationRequest:
    message = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER, content=text,
                      created_at=0.0)
    return GenerationRequest((message,), "You are a helpful assistant.", params,
                             conversation_key)


@pytest.fixture
def spec(bundled_model_path: Path) -> ModelSpec:
    return ModelSpec(str(bundled_model_path), "bundled", LoadOptions(n_ctx=2048, n_threads=1))


@pytest.fixture
def service(qtbot: QtBot) -> InferenceService:
    svc = InferenceService()
    yield svc
    svc.shutdown()


class Recorder:
    """Collects every signal of the service, to check that each job ends once."""

    def __init__(self, svc: InferenceService) -> None:
        self.batches: dict[int, list[str]] = {}
        self.finals: dict[int, list[tuple[str, object]]] = {}
        self.started: list[int] = []
        svc.generation_started.connect(self.started.append)
        svc.token_batch_ready.connect(lambda j, t: self.batches.setdefault(j, []).append(t))
        svc.generation_ended.connect(lambda j, end: self.finals.setdefault(j, []).append(
            (end.outcome, end.result if end.result is not None else end.reason)))

    def ended(self, job: int) -> bool:
        return job in self.finals

    def final(self, job: int) -> tuple[str, object]:
        assert len(self.finals[job]) == 1, f"job {job} ended {len(self.finals[job])} times"
        return self.finals[job][0]


def test_load_reports_model_and_state(service: InferenceService, spec: ModelSpec,
                                      qtbot: QtBot) -> None:
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS) as loaded:
        service.load_model(spec)
    info = loaded.args[0]
    assert info.model_id == "bundled"
    assert info.architecture == "llama"
    assert info.n_ctx == 2048
    assert service.state == ModelState.READY


def test_reply_streams_in_several_batches_and_matches_final_text(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    rec = Recorder(service)
    job = service.generate(ask("Write a long story about a dragon and a knight."), spec)
    qtbot.waitUntil(lambda: rec.ended(job), timeout=WAIT_MS)
    kind, result = rec.final(job)
    assert kind == "finished"
    assert isinstance(result, GenerationResult)
    batches = rec.batches[job]
    assert len(batches) >= 3, "text should arrive progressively, not all at the end"
    assert "".join(batches).strip() == result.text
    assert result.stats.completion_tokens and result.stats.completion_tokens > 5
    assert result.stats.tokens_per_s and result.stats.tokens_per_s > 0
    assert result.stats.ttft_ms is not None and result.stats.finish_reason in (
        FinishReason.STOP, FinishReason.LENGTH)


def test_cancel_mid_generation_is_quick_and_next_request_works(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    rec = Recorder(service)
    params = SamplingParams(temperature=0.8, max_tokens=2000, seed=3, repeat_penalty=1.0)
    job = service.generate(ask("Count from one to one thousand in words.", params=params), spec)
    qtbot.waitUntil(lambda: len(rec.batches.get(job, [])) >= 2, timeout=WAIT_MS)
    asked = time.perf_counter()
    service.cancel(job)
    qtbot.waitUntil(lambda: rec.ended(job), timeout=10_000)
    latency = time.perf_counter() - asked
    kind, result = rec.final(job)
    assert kind == "cancelled"
    assert isinstance(result, GenerationResult)
    assert result.stats.finish_reason == FinishReason.STOPPED
    assert result.text, "the partial text comes back"
    assert result.stats.completion_tokens is not None and result.stats.completion_tokens < 2000
    assert latency < 15.0  # a loose bound for a shared machine: the benchmark measures it

    again = service.generate(ask("Say hi.", params=SamplingParams(max_tokens=16)), spec)
    qtbot.waitUntil(lambda: rec.ended(again), timeout=WAIT_MS)
    assert rec.final(again)[0] == "finished"


def test_cancel_during_a_long_prompt_aborts_prompt_evaluation(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    rec = Recorder(service)
    long_spec = ModelSpec(spec.path, spec.model_id, LoadOptions(n_ctx=8192, n_threads=1,
                                                                n_batch=256))
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS):
        service.load_model(long_spec)
    text = " ".join(f"line {i} of a very long document about llamas." for i in range(300))
    job = service.generate(ask(text, params=SamplingParams(max_tokens=8)), long_spec)
    qtbot.waitUntil(lambda: job in rec.started, timeout=WAIT_MS)
    service.cancel(job)
    qtbot.waitUntil(lambda: rec.ended(job), timeout=10_000)
    kind, result = rec.final(job)
    assert kind == "cancelled"
    assert isinstance(result, GenerationResult)
    assert result.stats.completion_tokens == 0, "stopped before the first token"
    # The context was reset after the abort: the next request still answers.
    again = service.generate(ask("Say hi.", params=SamplingParams(max_tokens=8)), long_spec)
    qtbot.waitUntil(lambda: rec.ended(again), timeout=WAIT_MS)
    assert rec.final(again)[0] == "finished"


def test_two_requests_queue_and_both_finish_in_order(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    rec = Recorder(service)
    params = SamplingParams(max_tokens=24, seed=1)
    first = service.generate(ask("Name a colour.", "a", params), spec)
    second = service.generate(ask("Name an animal.", "b", params), spec)
    assert service.busy
    qtbot.waitUntil(lambda: rec.ended(first) and rec.ended(second), timeout=WAIT_MS)
    assert rec.final(first)[0] == "finished"
    assert rec.final(second)[0] == "finished"
    assert rec.started == [first, second], "jobs run one after the other, in order"
    assert not service.busy


def test_queued_job_cancelled_before_it_starts(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    rec = Recorder(service)
    first = service.generate(ask("Tell me about the sea.", params=SamplingParams(max_tokens=64)),
                             spec)
    second = service.generate(ask("Tell me about the sky."), spec)
    service.cancel(second)
    qtbot.waitUntil(lambda: rec.ended(first) and rec.ended(second), timeout=WAIT_MS)
    assert rec.final(second)[0] == "cancelled"
    assert second not in rec.started


@pytest.mark.parametrize("content", [None, b"this is not a model at all" * 100,
                                     b"GGUF" + b"\x00" * 64])
def test_missing_or_bad_file_fails_clearly_and_service_keeps_working(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot, tmp_path: Path,
        content: bytes | None) -> None:
    rec = Recorder(service)
    bad = tmp_path / "model.gguf"
    if content is not None:
        bad.write_bytes(content)
    bad_spec = ModelSpec(str(bad), "bad", spec.options)
    with qtbot.waitSignal(service.model_load_failed, timeout=WAIT_MS) as failed:
        job = service.generate(ask("Hello?"), bad_spec)
    reason = failed.args[0]
    assert "model.gguf" in reason or "model file" in reason
    qtbot.waitUntil(lambda: rec.ended(job), timeout=10_000)
    kind, message = rec.final(job)
    assert kind == "failed" and isinstance(message, str) and message
    assert service.state == ModelState.UNLOADED

    ok = service.generate(ask("Say hi.", params=SamplingParams(max_tokens=8)), spec)
    qtbot.waitUntil(lambda: rec.ended(ok), timeout=WAIT_MS)
    assert rec.final(ok)[0] == "finished"


def test_a_failed_load_after_a_loaded_model_reports_it_freed(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot, tmp_path: Path) -> None:
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS):
        service.load_model(spec)
    assert service.model_info is not None
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with qtbot.waitSignals([service.model_unloaded, service.model_load_failed],
                           timeout=WAIT_MS):
        service.load_model(ModelSpec(str(bad), "bad", spec.options))
    qtbot.waitUntil(lambda: service.model_info is None, timeout=10_000)
    assert service.state == ModelState.UNLOADED


def test_gpu_offload_automatic_is_chosen_when_loading(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    options = LoadOptions(n_ctx=2048, n_threads=1, n_gpu_layers=GPU_LAYERS_AUTOMATIC)
    auto = ModelSpec(spec.path, "auto", options)
    rec = Recorder(service)
    loads: list[object] = []
    service.model_loaded.connect(loads.append)
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS) as loaded:
        job = service.generate(ask("Say hi.", params=SamplingParams(max_tokens=4)), auto)
    # Without a GPU nothing is offloaded; with one, the small model goes there whole.
    assert loaded.args[0].options.n_gpu_layers == (31 if probe_gpus().devices else 0)
    qtbot.waitUntil(lambda: rec.ended(job), timeout=WAIT_MS)
    assert rec.final(job)[0] == "finished"
    again = service.generate(ask("Again.", params=SamplingParams(max_tokens=4)), auto)
    qtbot.waitUntil(lambda: rec.ended(again), timeout=WAIT_MS)
    assert rec.final(again)[0] == "finished"
    assert service.model_info is not None and service.model_info.model_id == "auto"
    assert len(loads) == 1  # the same choice does not load the model again


def test_switching_models_unloads_the_old_one(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot) -> None:
    other = ModelSpec(spec.path, "other-name", LoadOptions(n_ctx=1024, n_threads=1))
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS):
        service.load_model(spec)
    rec = Recorder(service)
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS) as loaded:
        job = service.generate(ask("Hi", params=SamplingParams(max_tokens=4)), other)
    assert loaded.args[0].model_id == "other-name"
    assert loaded.args[0].n_ctx == 1024
    qtbot.waitUntil(lambda: rec.ended(job), timeout=WAIT_MS)
    _kind, result = rec.final(job)
    assert isinstance(result, GenerationResult) and result.model_id == "other-name"


@pytest.mark.parametrize(("flash_attn", "kv"), [(True, "q8_0"), (False, "q8_0"), (True, "f16")])
def test_context_cache_types_load_and_answer(
        service: InferenceService, spec: ModelSpec, qtbot: QtBot, flash_attn: bool,
        kv: str) -> None:
    # q8_0 needs flash attention; without it the engine falls back to f16 by itself.
    options = LoadOptions(n_ctx=1024, n_threads=1, flash_attn=flash_attn, kv_cache_type=kv)
    rec = Recorder(service)
    job = service.generate(ask("Say hello.", params=SamplingParams(max_tokens=8, seed=1)),
                           ModelSpec(spec.path, "kv", options))
    qtbot.waitUntil(lambda: rec.ended(job), timeout=WAIT_MS)
    kind, result = rec.final(job)
    assert kind == "finished", result
    assert isinstance(result, GenerationResult) and result.text
