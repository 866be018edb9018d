"""Any installed model by name: one whose file is damaged fails to load with a 500 that
says why, one whose file is gone is not listed, and the bundled model still answers."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from api_support import LiveApi

from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelEntry, ModelRegistry, ModelSource


def install(path: Path, model_id: str) -> str:
    entry = ModelEntry(id=model_id, name=model_id, path=str(path), size=path.stat().st_size
                       if path.exists() else 0, quantisation=None, sha256=None,
                       source=ModelSource.LINKED, chat_format="chatml", context_length=2048)
    return ModelRegistry(app_paths().ensure()).add(entry).id


def test_a_damaged_model_fails_to_load_with_500(api: LiveApi, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    model_id = install(broken, "broken-model")
    client = api.client()
    assert model_id in [m.id for m in client.models.list()]
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=model_id, max_tokens=4,
                                       messages=[{"role": "user", "content": "Hi"}])
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "model_load_failed"
    assert "failed to load" in body["message"] and len(body["message"]) > 30
    reply = client.chat.completions.create(model=api.model_id, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content, "the bundled model loads again"


def test_a_model_whose_file_is_gone_is_not_listed(api: LiveApi, tmp_path: Path) -> None:
    gone = tmp_path / "gone.gguf"
    gone.write_bytes(b"x")
    model_id = install(gone, "gone-model")
    gone.unlink()
    client = api.client()
    assert model_id not in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(model_id)
