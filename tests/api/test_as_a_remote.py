"""Another LlamaDesk as a remote server: the app's own remote backend (the official
openai client) checks and chats through this API, key and all, on loopback."""

from __future__ import annotations

import threading
from pathlib import Path

from api_support import start_server

from llamadesk.core import bundled
from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.backend import RemoteTarget
from llamadesk.services.engine import GenerationRequest
from llamadesk.services.inference import InferenceService
from llamadesk.services.remote import CheckStatus, check_connection
from llamadesk.services.remote_engine import RemoteEngine

KEY = "ld-remote-test-key"


def test_a_llamadesk_connection_to_this_api(service: InferenceService,
                                            bundled_model_path: Path) -> None:
    server = start_server(service, api_key=KEY)
    try:
        desk = Connection("desk", server.base_url)
        found = check_connection(desk, KEY)
        assert found.ok and bundled.manifest().id in found.models
        refused = check_connection(desk, None)
        assert refused.status == CheckStatus.UNAUTHORIZED
        target = RemoteTarget(desk, bundled.manifest().id,
                              RemoteSettings(read_timeout_s=120.0, max_retries=0),
                              api_key=lambda: KEY)
        question = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                           content="Hello, who are you?", created_at=0.0)
        pieces: list[str] = []
        result = RemoteEngine(target).generate(
            GenerationRequest((question,), "", SamplingParams(max_tokens=12, seed=2)),
            pieces.append, threading.Event())
        assert result.text and "".join(pieces).strip() == result.text
        assert result.stats.completion_tokens is not None
        assert 0 < result.stats.completion_tokens <= 12
    finally:
        server.stop()
