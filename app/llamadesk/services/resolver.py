"""Turn a conversation's model choice into a model file and load options, or a remote
server's model.

The one owner of "which model serves this, with what context, and what the fit estimate
is given":
- the default-model rule: a chat's own model, else the settings' model (the last one
  picked), else the bundled model; a picked local model becomes the model of new chats,
  a remote one never does (``picked_becomes_default``);
- the context length: a chat's own, else the settings' default (``default_n_ctx``);
- which model serves an API request (``api_spec``: installed here, its file present)
  and whether a loaded model serves a job (``serves``);
- the fit estimate's inputs (``fit_estimate``).
An id ``<connection>/<model>`` whose connection the user added is that server's model;
a connection that is turned off or gone is an error, never a quiet switch to another
model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from llamadesk.core import bundled
from llamadesk.core import connections as remote
from llamadesk.core.conversation import Conversation
from llamadesk.core.fit import FitEstimate, MemoryBudget, ModelShape, estimate_fit
from llamadesk.core.registry import ModelEntry, ModelRegistry, RegistryError
from llamadesk.core.settings import AppSettings
from llamadesk.services.backend import RemoteTarget
from llamadesk.services.engine_types import LoadOptions
from llamadesk.services.fit_check import memory_budget, offload_setting
from llamadesk.services.jobs import ModelSpec

if TYPE_CHECKING:  # keyring: imported for a remote model only, not by the early load's
    from llamadesk.core.secrets import SecretStore  # choice of model (engine_import)


def default_n_ctx(settings: AppSettings) -> int:
    """The context length when nothing names one (no chat open, an API request, the
    command line, the Models window's fit labels): the settings' default for new chats."""
    return settings.defaults.n_ctx


def fit_estimate(settings: AppSettings, size: int, shape: ModelShape | None,
                 context_length: int | None, n_ctx: int | None = None,
                 budget: MemoryBudget | None = None) -> FitEstimate:
    """Will a model file of ``size`` bytes fit? The one place ``estimate_fit``'s inputs
    are put together: the context ``n_ctx`` (None: ``default_n_ctx``) capped at the
    model's trained ``context_length``, the memory free now (or ``budget``, measured
    earlier), and the hardware settings in force (GPU offload, context cache types)."""
    return estimate_fit(size, shape, n_ctx or default_n_ctx(settings),
                        budget or memory_budget(), context_length=context_length,
                        hardware=settings.hardware)


def serves(loaded: ModelSpec | None, wanted: ModelSpec | None, any_copy: bool) -> bool:
    """Whether the loaded model answers a job that wants ``wanted`` without a load:
    a job that names no model takes what is loaded; the same spec does; with
    ``any_copy`` (a job from outside the window: the local API), any loaded copy of the
    same model does, whatever its load options, so the API does not reload the window's
    model."""
    if wanted is None or wanted == loaded:
        return True
    return any_copy and loaded is not None and loaded.model_id == wanted.model_id


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
    ctx = min(default_n_ctx(settings) if n_ctx is None else n_ctx, model.context_length)
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

    def n_ctx(self, conversation: Conversation | None = None) -> int:
        """The context a chat is answered with: its own, else (no chat) the default."""
        if conversation is not None:
            return conversation.params.n_ctx
        return default_n_ctx(self._settings.current)

    def __call__(self, model_id: str | None, n_ctx: int | None = None) -> ModelSpec:
        """The file and load options for ``model_id`` with a context of ``n_ctx``
        (None: ``default_n_ctx``)."""
        settings = self._settings.current
        if n_ctx is None:
            n_ctx = default_n_ctx(settings)
        try:
            wanted = self.effective_model_id(model_id)
            if wanted == bundled.manifest().id:
                return self._with_chosen_format(bundled_spec(settings, n_ctx))
        except bundled.BundledModelError as exc:
            raise LookupError(str(exc)) from exc
        remote_spec = self._remote_spec(wanted, settings, n_ctx)
        if remote_spec is not None:
            return remote_spec
        return entry_spec(self.installed(wanted), settings, n_ctx)

    def chat_spec(self, conversation: Conversation | None) -> ModelSpec:
        """The model and context a chat is answered with (``None``: no chat open, the
        default model at the default context)."""
        if conversation is None:
            return self(None)
        return self(conversation.model_id, self.n_ctx(conversation))

    def installed(self, model_id: str) -> ModelEntry:
        """The installed local model ``model_id`` names, its file present; else a
        LookupError that says what to do."""
        try:
            entry = self.registry.get(model_id) if self.registry is not None else None
        except RegistryError as exc:
            raise LookupError(str(exc)) from exc
        if entry is None:
            raise LookupError(f"The model {model_id!r} is not installed. Pick another model "
                              "for this chat, or download it from the Models page.")
        if not entry.available:
            raise LookupError(f"The file of {entry.name} is gone ({entry.path}). Pick another "
                              "model, or import or download it again from the Models page.")
        return entry

    def api_spec(self, model_id: str) -> ModelSpec:
        """The model that serves a local API request naming ``model_id``: an installed
        local model only (the API never forwards to a remote server, and names no
        default), at the default context; else a LookupError."""
        try:
            self.installed(model_id)
        except LookupError as exc:
            raise LookupError(f"{exc} GET /v1/models lists the installed ones.") from exc
        return self(model_id)

    def picked_becomes_default(self, model_id: str) -> bool:
        """Whether picking ``model_id`` for a chat makes it the model of new chats too:
        a local model does; a remote one never, so a new chat does not send its text
        away unless the user picks so again."""
        if remote.split_model_id(model_id) is None:
            return True
        try:
            self.installed(model_id)  # a local model whose id has a slash
        except LookupError:
            return False
        return True

    def _connection_of(self, model_id: str,
                       settings: AppSettings) -> tuple[remote.Connection, str] | None:
        """The added connection ``model_id`` names and its model there, or None."""
        split = remote.split_model_id(model_id)
        connection = remote.find(settings.connections, split[0]) if split else None
        if split is None or connection is None:
            return None
        return connection, split[1]

    def _remote_spec(self, wanted: str, settings: AppSettings, n_ctx: int) -> ModelSpec | None:
        """The spec of a remote model, None when ``wanted`` names no connection."""
        found = self._connection_of(wanted, settings)
        if found is None:
            return None
        connection, model = found
        if not connection.enabled:
            raise LookupError(f"The connection {connection.name} is turned off, so its model "
                              f"{model!r} is not available. Turn it on, or pick another "
                              "model for this chat.")
        if self._secrets is None:
            from llamadesk.core.secrets import SecretStore

            self._secrets = SecretStore()
        secrets, name = self._secrets, connection.name
        target = RemoteTarget(connection, model, settings.remote,
                              api_key=lambda: secrets.api_key(name))
        return ModelSpec(path="", model_id=target.model_id,
                         options=load_options(settings, n_ctx),
                         name=f"{model} ({connection.name})", connection=target)


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
