"""Turn a conversation's model choice into a model file and load options, or a remote
server's model.

The one owner of the default-model rule: a chat's own model, else the settings' model
(the last one picked), else the bundled model. An id ``<connection>/<model>`` whose
connection the user added is that server's model; a connection that is turned off or
gone is an error, never a quiet switch to another model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from llamadesk.core import bundled
from llamadesk.core import connections as remote
from llamadesk.core.registry import ModelEntry, ModelRegistry, RegistryError
from llamadesk.core.secrets import SecretStore
from llamadesk.core.settings import AppSettings
from llamadesk.services.backend import RemoteTarget
from llamadesk.services.engine_types import LoadOptions
from llamadesk.services.fit_check import offload_setting
from llamadesk.services.jobs import ModelSpec


def load_options(settings: AppSettings, n_ctx: int) -> LoadOptions:
    """llama.cpp load options from the app's hardware settings."""
    hw = settings.hardware
    return LoadOptions(
        n_ctx=n_ctx,
        n_threads=hw.threads(),
        n_gpu_layers=offload_setting(hw),
        flash_attn=hw.flash_attn,
        n_batch=hw.n_batch,
        kv_cache_type=hw.kv_cache_type,
    )


def bundled_spec(settings: AppSettings, n_ctx: int | None = None) -> ModelSpec:
    """The bundled model (raises bundled.BundledModelError when its file is missing or
    damaged)."""
    model = bundled.locate()
    ctx = min(n_ctx or settings.defaults.n_ctx, model.context_length)
    return ModelSpec(path=str(model.path), model_id=model.id,
                     options=load_options(settings, ctx), fallback_format=model.chat_format,
                     name=model.name)


def entry_spec(entry: ModelEntry, settings: AppSettings, n_ctx: int) -> ModelSpec:
    """An installed model's spec; the context is capped at what the model was trained for."""
    ctx = min(n_ctx, entry.context_length) if entry.context_length else n_ctx
    return ModelSpec(path=entry.path, model_id=entry.id, options=load_options(settings, ctx),
                     fallback_format=entry.chat_format, name=entry.name)


class SettingsSource(Protocol):
    """Where the settings in force come from (``SettingsService`` in the app)."""

    @property
    def current(self) -> AppSettings:
        """The settings in force."""
        ...


class ModelResolver:
    """Resolves a chat's model choice. ``None`` means the app's default model (the
    bundled one unless the user chose another); anything else must be installed.
    Failures raise LookupError with a sentence that says what to do."""

    def __init__(self, settings: SettingsSource, registry: ModelRegistry | None = None,
                 secrets: SecretStore | None = None) -> None:
        self._settings = settings
        self.registry = registry
        self._secrets = secrets

    def effective_model_id(self, model_id: str | None) -> str:
        """The id of the model that answers a chat whose own choice is ``model_id``."""
        return model_id or self._settings.current.model_id or bundled.manifest().id

    def __call__(self, model_id: str | None, n_ctx: int) -> ModelSpec:
        """The file and load options for ``model_id`` with a context of ``n_ctx``."""
        settings = self._settings.current
        try:
            wanted = self.effective_model_id(model_id)
            if wanted == bundled.manifest().id:
                return self._with_chosen_format(bundled_spec(settings, n_ctx))
        except bundled.BundledModelError as exc:
            raise LookupError(str(exc)) from exc
        remote_spec = self._remote_spec(wanted, settings, n_ctx)
        if remote_spec is not None:
            return remote_spec
        try:
            entry = self.registry.get(wanted) if self.registry is not None else None
        except RegistryError as exc:
            raise LookupError(str(exc)) from exc
        if entry is None:
            raise LookupError(f"The model {wanted!r} is not installed. Pick another model "
                              "for this chat, or download it from the Models page.")
        if not entry.available:
            raise LookupError(f"The file of {entry.name} is gone ({entry.path}). Pick another "
                              "model, or import or download it again from the Models page.")
        return entry_spec(entry, settings, n_ctx)

    def _remote_spec(self, wanted: str, settings: AppSettings, n_ctx: int) -> ModelSpec | None:
        """The spec of a remote model, None when ``wanted`` names no connection."""
        split = remote.split_model_id(wanted)
        connection = remote.find(settings.connections, split[0]) if split else None
        if split is None or connection is None:
            return None
        if not connection.enabled:
            raise LookupError(f"The connection {connection.name} is turned off, so its model "
                              f"{split[1]!r} is not available. Turn it on, or pick another "
                              "model for this chat.")
        if self._secrets is None:
            self._secrets = SecretStore()
        secrets, name = self._secrets, connection.name
        target = RemoteTarget(connection, split[1], settings.remote,
                              api_key=lambda: secrets.api_key(name))
        return ModelSpec(path="", model_id=target.model_id,
                         options=load_options(settings, n_ctx),
                         name=f"{split[1]} ({connection.name})", connection=target)


    def _with_chosen_format(self, spec: ModelSpec) -> ModelSpec:
        """The bundled model with the fallback chat format the user chose for it, if any
        (the registry keeps that choice; the manifest only has the shipped default)."""
        try:
            entry = self.registry.get(spec.model_id) if self.registry is not None else None
        except RegistryError:
            return spec  # an unreadable registry: the shipped default still works
        if entry is None or entry.chat_format == spec.fallback_format:
            return spec
        return replace(spec, fallback_format=entry.chat_format)


class _CalledSettings:
    """Settings from a function, read on every call."""

    def __init__(self, get_settings: Callable[[], AppSettings]) -> None:
        self._get = get_settings

    @property
    def current(self) -> AppSettings:
        return self._get()


def make_resolver(get_settings: Callable[[], AppSettings],
                  registry: ModelRegistry | None = None,
                  secrets: SecretStore | None = None) -> ModelResolver:
    """A ModelResolver that reads the settings from ``get_settings()`` on every call."""
    return ModelResolver(_CalledSettings(get_settings), registry, secrets)
