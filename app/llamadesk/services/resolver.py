"""Turn a conversation's model choice into a model file and load options."""

from __future__ import annotations

from collections.abc import Callable

from llamadesk.core import bundled
from llamadesk.core.registry import ModelEntry, ModelRegistry, RegistryError
from llamadesk.core.settings import AppSettings
from llamadesk.services.engine import LoadOptions
from llamadesk.services.fit_check import offload_setting
from llamadesk.services.inference import ModelSpec


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


ModelResolver = Callable[[str | None, int], ModelSpec]


def make_resolver(get_settings: Callable[[], AppSettings],
                  registry: ModelRegistry | None = None) -> ModelResolver:
    """A resolver for the chat controller: None means the app's default model (the
    bundled one unless the user chose another); anything else must be installed.
    Failures raise LookupError with a sentence that says what to do."""

    def resolve(model_id: str | None, n_ctx: int) -> ModelSpec:
        settings = get_settings()
        wanted = model_id or settings.model_id
        try:
            if wanted is None or wanted == bundled.manifest().id:
                return bundled_spec(settings, n_ctx)
        except bundled.BundledModelError as exc:
            raise LookupError(str(exc)) from exc
        try:
            entry = registry.get(wanted) if registry is not None else None
        except RegistryError as exc:
            raise LookupError(str(exc)) from exc
        if entry is None:
            raise LookupError(f"The model {wanted!r} is not installed. Pick another model "
                              "for this chat, or download it from the Models page.")
        if not entry.available:
            raise LookupError(f"The file of {entry.name} is gone ({entry.path}). Pick another "
                              "model, or import or download it again from the Models page.")
        return entry_spec(entry, settings, n_ctx)

    return resolve
