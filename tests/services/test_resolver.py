"""The resolver: the one owner of the default-model rule (the chat's own model, else the
settings' model, else the bundled one), with readable failures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from tiny_gguf import tiny_resources, write_tiny_gguf

from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings
from llamadesk.services.resolver import ModelResolver, make_resolver
from llamadesk.services.settings import SettingsService

BUNDLED = "smollm2-135m-instruct-q4_1"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("LLAMADESK_RESOURCES", str(tiny_resources(tmp_path / "resources")))
    return ModelRegistry(app_paths().ensure())


def test_the_default_model_rule(qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    settings = SettingsService(tmp_path / "settings.json")
    resolver = ModelResolver(settings, registry)
    other = registry.import_file(write_tiny_gguf(tmp_path / "other.gguf", seed=1), link=True,
                                 name="Other")
    assert resolver.effective_model_id(None) == BUNDLED, "nothing chosen: the bundled model"
    assert resolver(None, 1024).model_id == BUNDLED
    settings.set_default_model(other.id)
    assert resolver.effective_model_id(None) == other.id, "read from the service, live"
    assert resolver(None, 1024).model_id == other.id
    assert resolver.effective_model_id(BUNDLED) == BUNDLED, "the chat's own choice wins"
    spec = resolver(BUNDLED, 1024)
    assert spec.model_id == BUNDLED and spec.options.n_ctx == 1024


def test_load_options_come_from_the_settings_and_the_context_is_capped(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    settings = SettingsService(tmp_path / "settings.json")
    settings.update(replace(AppSettings(), hardware=replace(AppSettings().hardware,
                                                            n_threads=3,
                                                            kv_cache_type="f16")))
    small = registry.import_file(write_tiny_gguf(tmp_path / "s.gguf", seed=2,
                                                 context_length=512), link=True)
    spec = ModelResolver(settings, registry)(small.id, 4096)
    assert spec.path == small.path and spec.name == small.name
    assert spec.options.n_ctx == 512, "capped at what the model was trained for"
    assert (spec.options.n_threads, spec.options.kv_cache_type) == (3, "f16")


def test_unknown_and_missing_models_fail_with_a_sentence(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    resolver = make_resolver(lambda: AppSettings(), registry)
    with pytest.raises(LookupError, match="'nope' is not installed"):
        resolver("nope", 1024)
    gone = registry.import_file(write_tiny_gguf(tmp_path / "gone.gguf", seed=3), link=True,
                                name="Gone")
    Path(gone.path).unlink()
    with pytest.raises(LookupError, match="The file of Gone is gone"):
        resolver(gone.id, 1024)


def test_the_chat_format_chosen_for_a_model_is_the_one_it_loads_with(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    resolver = make_resolver(lambda: AppSettings(), registry)
    shipped = resolver(BUNDLED, 1024).fallback_format
    chosen = "llama-2" if shipped != "llama-2" else "vicuna"
    registry.set_chat_format(BUNDLED, chosen)
    assert resolver(BUNDLED, 1024).fallback_format == chosen, "the bundled model's choice"
    assert resolver(None, 1024).fallback_format == chosen, "also as the default model"
    other = registry.import_file(write_tiny_gguf(tmp_path / "o.gguf", seed=4), link=True)
    registry.set_chat_format(other.id, "zephyr")
    assert resolver(other.id, 1024).fallback_format == "zephyr"
