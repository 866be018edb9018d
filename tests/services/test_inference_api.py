"""The inference service's surface (InferenceApi), kept by the real service and by the
FakeInferenceService that tests of UI behaviour use; and the fake keeps the real one's
promises (order, cancel, exactly one final signal per job)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from fake_inference import FakeInferenceService, FakeReply
from PySide6.QtCore import QMetaMethod, QObject
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import FinishReason, Message, Role, SamplingParams
from llamadesk.services.engine import GenerationRequest, LoadOptions
from llamadesk.services.inference import InferenceService, ModelSpec, ModelState
from llamadesk.services.inference_api import InferenceApi

WAIT_MS = 10_000
SPEC = ModelSpec("/models/a.gguf", "model-a", LoadOptions(n_ctx=512), name="Model A")


def signals_of(cls: type[QObject]) -> dict[str, str]:
    meta = cls.staticMetaObject
    found = {}
    # From QObject's own methods on: signals may be declared on a base class.
    for i in range(QObject.staticMetaObject.methodCount(), meta.methodCount()):
        method = meta.method(i)
        name = bytes(method.name().data()).decode()
        if method.methodType() == QMetaMethod.MethodType.Signal and not name.startswith("_"):
            found[name] = bytes(method.methodSignature().data()).decode()
    return found


def test_the_fake_has_the_real_services_surface() -> None:
    wanted = {n for n, v in InferenceApi.__annotations__.items() if "SignalInstance" in str(v)}
    real, fake = signals_of(InferenceService), signals_of(FakeInferenceService)
    assert set(real) == wanted
    assert fake == real, "same signals, same argument types"
    methods = {n for n in vars(InferenceApi) if not n.startswith("_")} - {"state", "model_info"}
    for name in methods:
        assert callable(getattr(InferenceService, name)) or isinstance(
            getattr(InferenceService, name), property), name
        assert type(getattr(FakeInferenceService, name)) is type(
            getattr(InferenceService, name)), name


def request(text: str = "Hello", max_tokens: int = 512) -> GenerationRequest:
    question = Message(1, 1, None, Role.USER, text, 0.0)
    return GenerationRequest((question,), "", SamplingParams(max_tokens=max_tokens))


class Record(QObject):
    """Every signal of a service, in order."""

    def __init__(self, service: InferenceApi) -> None:
        super().__init__()
        self.events: list[tuple[str, tuple[object, ...]]] = []
        for name in signals_of(FakeInferenceService):
            getattr(service, name).connect(
                lambda *args, name=name: self.events.append((name, args)))

    def finals(self) -> list[tuple[str, int]]:
        """(outcome, job id) of each final signal, in order."""
        return [(args[1].outcome, int(args[0])) for name, args in self.events
                if name == "generation_ended"]

    def text_of(self, job_id: int) -> str:
        return "".join(str(a[1]) for n, a in self.events
                       if n == "token_batch_ready" and a[0] == job_id)


@pytest.fixture
def fake(qtbot: QtBot) -> Iterator[FakeInferenceService]:
    service = FakeInferenceService()
    yield service
    service.shutdown()


def test_jobs_run_in_order_and_each_ends_once(qtbot: QtBot,
                                              fake: FakeInferenceService) -> None:
    record = Record(fake)
    fake.script("first reply here", FakeReply("second", fail="out of memory"), "third")
    fake.load_model(SPEC)
    assert fake.state == ModelState.LOADING
    jobs = [fake.generate(request()) for _ in range(3)]
    assert fake.busy
    qtbot.waitUntil(lambda: len(record.finals()) == 3, timeout=WAIT_MS)
    assert record.finals() == [("finished", jobs[0]), ("failed", jobs[1]),
                               ("finished", jobs[2])]
    assert record.text_of(jobs[0]) == "first reply here"
    names = [n for n, _ in record.events]
    assert names.index("model_loaded") < names.index("generation_started")
    ends = {int(a[0]): a[1] for n, a in record.events if n == "generation_ended"}
    assert ends[jobs[1]].reason == "out of memory"
    assert not fake.busy and fake.state == ModelState.READY
    assert fake.model_info is not None and fake.model_info.name == "Model A"


def test_cancel_mid_reply_keeps_the_text_so_far(qtbot: QtBot,
                                                fake: FakeInferenceService) -> None:
    record = Record(fake)
    fake.script(FakeReply.long(), "never started")
    running = fake.generate(request(), SPEC)
    queued = fake.generate(request())
    qtbot.waitUntil(lambda: len(record.text_of(running)) > 20, timeout=WAIT_MS)
    fake.cancel()  # the running one
    fake.cancel(queued)
    qtbot.waitUntil(lambda: len(record.finals()) == 2, timeout=WAIT_MS)
    assert record.finals() == [("cancelled", running), ("cancelled", queued)]
    results = {a[0]: a[1].result for n, a in record.events
               if n == "generation_ended"}
    assert results[running].text == record.text_of(running)
    assert results[running].stats.finish_reason == FinishReason.STOPPED
    assert results[queued].text == ""
    started = [a[0] for n, a in record.events if n == "generation_started"]
    assert started == [running], "a job cancelled in the queue never starts"


def test_max_tokens_cuts_the_reply(qtbot: QtBot, fake: FakeInferenceService) -> None:
    fake.script("one two three four five")
    with qtbot.waitSignal(fake.generation_ended, timeout=WAIT_MS) as done:
        fake.generate(request(max_tokens=3), SPEC)
    result = done.args[1].result
    assert result.text == "one two three"
    assert result.stats.finish_reason == FinishReason.LENGTH
    assert result.stats.completion_tokens == 3


def test_a_model_that_fails_to_load_fails_its_jobs(qtbot: QtBot,
                                                   fake: FakeInferenceService) -> None:
    record = Record(fake)
    fake.fail_loading("model-a", "not a GGUF file")
    job = fake.generate(request(), SPEC)
    qtbot.waitUntil(lambda: bool(record.finals()), timeout=WAIT_MS)
    assert ("model_load_failed", ("not a GGUF file",)) in record.events
    assert record.finals() == [("failed", job)]
    assert fake.state == ModelState.UNLOADED and fake.model_info is None


def test_cancel_all_and_shutdown_end_every_job(qtbot: QtBot,
                                               fake: FakeInferenceService) -> None:
    record = Record(fake)
    fake.script(FakeReply.long(), FakeReply.long())
    jobs = [fake.generate(request(), SPEC) for _ in range(3)]
    fake.shutdown()
    assert Counter(j for _, j in record.finals()) == Counter(jobs)
    assert {name for name, _ in record.finals()} == {"cancelled"}
    assert not fake.busy
