"""The resolver: the one owner of the default-model rule (the chat's own model, else the
settings' model, else the bundled one), of the context length, of the model that serves
an API request and of the fit estimate's inputs, with readable failures. A real registry
and real settings files throughout."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from tiny_gguf import tiny_resources, write_tiny_gguf

from llamadesk.core.connections import Connection
from llamadesk.core.conversation import Conversation, SamplingParams
from llamadesk.core.fit import MemoryBudget, ModelShape, estimate_fit
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings
from llamadesk.services.resolver import (
    ModelResolver,
    default_n_ctx,
    fit_estimate,
    make_resolver,
    serves,
)
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


# -- the context, the fit inputs, the API's model and the reuse rule -----------------------
def _saved_settings(path: Path, settings: AppSettings) -> SettingsService:
    """Settings written to a real file and read back, as the app starts with them."""
    SettingsService(path).update(settings)
    return SettingsService.load(path)


def _chat(model_id: str | None, n_ctx: int) -> Conversation:
    return Conversation(id=1, title="t", created_at=0.0, updated_at=0.0, model_id=model_id,
                        params=SamplingParams(n_ctx=n_ctx))


def test_the_context_is_the_chats_own_else_the_settings_default(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    settings = _saved_settings(tmp_path / "settings.json",
                               AppSettings(defaults=SamplingParams(n_ctx=1536)))
    resolver = ModelResolver(settings, registry)
    assert default_n_ctx(settings.current) == resolver.n_ctx() == 1536, "from the file"
    assert resolver(None).options.n_ctx == 1536, "no context named: the default"
    assert resolver.chat_spec(None).options.n_ctx == 1536, "no chat open: the default"
    other = registry.import_file(write_tiny_gguf(tmp_path / "c.gguf", seed=5), link=True)
    chat = _chat(other.id, 768)
    assert resolver.n_ctx(chat) == 768, "a chat's own context wins"
    spec = resolver.chat_spec(chat)
    assert (spec.model_id, spec.options.n_ctx) == (other.id, 768)
    settings.update(replace(settings.current, defaults=SamplingParams(n_ctx=2048)))
    assert resolver(None).options.n_ctx == 2048, "read from the service on every call"


def test_the_fit_estimate_is_given_the_settings_in_force_and_the_default_context(
        qtbot: QtBot, tmp_path: Path) -> None:
    hardware = replace(AppSettings().hardware, kv_cache_type="f16", gpu_layers="none")
    settings = _saved_settings(tmp_path / "settings.json", AppSettings(
        defaults=SamplingParams(n_ctx=8192), hardware=hardware)).current
    budget = MemoryBudget(16 * 10**9, 8 * 10**9)
    shape = ModelShape(block_count=32, head_count_kv=8, head_dim=128)
    fit = fit_estimate(settings, 4 * 10**9, shape, 32768, budget=budget)
    assert fit == estimate_fit(4 * 10**9, shape, 8192, budget, context_length=32768,
                               hardware=settings.hardware), "the default context, f16 cache"
    assert fit.n_ctx == 8192
    assert fit_estimate(settings, 4 * 10**9, shape, 4096, 16384, budget).n_ctx == 4096, \
        "capped at what the model was trained for"
    cheaper = fit_estimate(AppSettings(), 4 * 10**9, shape, 32768, 8192, budget)
    assert cheaper.kv_cache_bytes < fit.kv_cache_bytes, "8-bit keys by default: less memory"


def test_an_api_request_is_served_by_an_installed_local_model_only(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    settings = _saved_settings(tmp_path / "settings.json", AppSettings(
        defaults=SamplingParams(n_ctx=1024),
        connections=(Connection("box", "http://127.0.0.1:9/v1"),)))
    resolver = ModelResolver(settings, registry)
    local = registry.import_file(write_tiny_gguf(tmp_path / "l.gguf", seed=6), link=True,
                                 name="Local")
    spec = resolver.api_spec(local.id)
    assert (spec.model_id, spec.options.n_ctx, spec.remote) == (local.id, 1024, False)
    assert resolver.api_spec(BUNDLED).model_id == BUNDLED
    assert resolver("box/llama").remote, "a chat may use the connection's model"
    with pytest.raises(LookupError, match=r"'box/llama' is not installed.*GET /v1/models"):
        resolver.api_spec("box/llama")
    with pytest.raises(LookupError, match="'gpt-4o' is not installed"):
        resolver.api_spec("gpt-4o")
    Path(local.path).unlink()
    with pytest.raises(LookupError, match="The file of Local is gone"):
        resolver.api_spec(local.id)
    assert resolver.installed(BUNDLED).id == BUNDLED


def test_a_loaded_model_serves_a_job_by_the_reuse_rule(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    resolver = make_resolver(lambda: AppSettings(), registry)
    loaded = resolver(BUNDLED, 1024)
    other_ctx = resolver(BUNDLED, 2048)
    other = resolver(registry.import_file(write_tiny_gguf(tmp_path / "r.gguf", seed=7),
                                          link=True).id, 1024)
    assert serves(loaded, None, any_copy=False), "a job that names no model"
    assert serves(loaded, resolver(BUNDLED, 1024), any_copy=False), "the same spec"
    assert not serves(loaded, other_ctx, any_copy=False), "the window's job reloads"
    assert serves(loaded, other_ctx, any_copy=True), "the API's job takes any copy"
    assert not serves(loaded, other, any_copy=True), "never another model"
    assert not serves(None, loaded, any_copy=True), "nothing loaded"


def test_a_picked_local_model_becomes_the_default_and_a_remote_one_never(
        qtbot: QtBot, registry: ModelRegistry, tmp_path: Path) -> None:
    settings = _saved_settings(tmp_path / "settings.json", AppSettings(
        connections=(Connection("box", "http://127.0.0.1:9/v1"),)))
    resolver = ModelResolver(settings, registry)
    local = registry.import_file(write_tiny_gguf(tmp_path / "p.gguf", seed=8), link=True)
    assert resolver.picked_becomes_default(local.id)
    assert resolver.picked_becomes_default(BUNDLED)
    assert not resolver.picked_becomes_default("box/llama-3-70b")
