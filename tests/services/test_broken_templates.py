"""A model whose own chat template hangs, escapes the sandbox, floods or does not compile
still answers, through the real engine and the bundled model: its fallback format is
used, the model's info carries the warning, and the inference service says so once
(``model_info_changed``), which the window shows as its "chat template is broken"
banner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf_tools import with_metadata
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.engine import GenerationRequest, LlamaEngine, LoadOptions
from llamadesk.services.inference import InferenceService, ModelSpec

WAIT_MS = 180_000
OPTIONS = LoadOptions(n_ctx=512, n_threads=1)
PARAMS = SamplingParams(max_tokens=6, temperature=0.0, seed=1)

BROKEN = {
    "hangs": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
             "{% endfor %}",
    "escapes": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "floods": "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
    "does not compile": "{% for m in messages %}{{ m.content }}",
}
REASONS = {"hangs": "ran past its budget", "escapes": "unsafe",
           "floods": "ran past its budget", "does not compile": "does not compile"}


@pytest.fixture(scope="module")
def broken_models(tmp_path_factory: pytest.TempPathFactory,
                  bundled_model_path: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("broken-templates")
    return {name: with_metadata(bundled_model_path, folder / f"{i}.gguf",
                                {"tokenizer.chat_template": source})
            for i, (name, source) in enumerate(BROKEN.items())}


def question(text: str = "What is the capital of France?") -> Message:
    return Message(id=1, conversation_id=1, parent_id=None, role=Role.USER, content=text,
                   created_at=0.0)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_the_engine_answers_with_the_fallback(broken_models: dict[str, Path],
                                              kind: str) -> None:
    engine = LlamaEngine()
    try:
        info = engine.load(broken_models[kind], OPTIONS, fallback_format="chatml")
        result = engine.generate(GenerationRequest((question(),), "", PARAMS),
                                 lambda _t: None, threading.Event())
    finally:
        warning = engine.info.template_warning if engine.info else None
        name = engine.info.template_name if engine.info else None
        engine.unload()
    assert result.text and result.stats.completion_tokens
    assert name == "chatml"
    assert warning is not None and REASONS[kind] in warning
    assert "using the chatml format instead" in warning
    if kind == "does not compile":
        assert info.template_warning == warning  # known at load already
    else:
        assert info.template_warning is None  # found out while rendering


@pytest.fixture
def service() -> Iterator[InferenceService]:
    inference = InferenceService()
    yield inference
    inference.shutdown()


def test_the_service_reports_a_template_that_broke_while_rendering(
        qtbot: QtBot, service: InferenceService, broken_models: dict[str, Path]) -> None:
    spec = ModelSpec(path=str(broken_models["hangs"]), model_id="hanging-template",
                     options=OPTIONS, fallback_format="zephyr")
    with qtbot.waitSignal(service.model_loaded, timeout=WAIT_MS) as loaded:
        service.load_model(spec)
    assert loaded.args[0].template_warning is None
    changes: list[object] = []
    service.model_info_changed.connect(changes.append)
    for _ in range(2):
        with qtbot.waitSignal(service.generation_ended, timeout=WAIT_MS) as done:
            service.generate(GenerationRequest((question(),), "", PARAMS), spec)
        assert done.args[1].outcome == "finished" and done.args[1].result.text
    assert len(changes) == 1, "warned once"
    info = changes[0]
    assert service.model_info is info
    assert info.template_name == "zephyr"  # type: ignore[attr-defined]
    assert "ran past its budget" in info.template_warning  # type: ignore[attr-defined]
