"""The API and the window share the one inference worker: a request while the window
streams waits its turn, and both complete."""

from __future__ import annotations

from api_support import LiveApi
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.engine import GenerationRequest, GenerationResult


def test_an_api_request_while_the_window_streams(api: LiveApi, qtbot: QtBot) -> None:
    spec = api.server._ctx.resolve(api.model_id)
    question = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                       content="Tell me about the sea.", created_at=0.0)
    finished: dict[int, GenerationResult] = {}
    batches: list[str] = []
    api.service.generation_ended.connect(
        lambda j, end: finished.__setitem__(j, end.result) if end.outcome == "finished"
        else None)
    api.service.token_batch_ready.connect(lambda _j, t: batches.append(t))
    window_job = api.service.generate(GenerationRequest(
        (question,), "", SamplingParams(max_tokens=48, temperature=0), "1"), spec)
    reply = api.client().chat.completions.create(
        model=api.model_id, max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=120_000)
    assert next(iter(finished)) == window_job, "first come, first served"
    assert finished[window_job].text
    # The window hears that the API's job ran, but only its own text reaches its batches.
    assert "".join(batches).strip() == finished[window_job].text
