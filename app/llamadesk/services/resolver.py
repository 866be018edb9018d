"""Turn a conversation's model choice into a model file and load options."""

from __future__ import annotations

from collections.abc import Callable

from llamadesk.core import bundled
from llamadesk.core.settings import AppSettings
from llamadesk.services.engine import LoadOptions, supports_gpu_offload
from llamadesk.services.inference import ModelSpec


def load_options(settings: AppSettings, n_ctx: int) -> LoadOptions:
    """llama.cpp load options from the app's hardware settings."""
    hw = settings.hardware
    return LoadOptions(
        n_ctx=n_ctx,
        n_threads=hw.threads(),
        n_gpu_layers=hw.n_gpu_layers(supports_gpu_offload()),
        flash_attn=hw.flash_attn,
        n_batch=hw.n_batch,
    )


def bundled_spec(settings: AppSettings, n_ctx: int | None = None) -> ModelSpec:
    """The bundled model (raises bundled.BundledModelError, a LookupError's cousin,
    when its file is missing or damaged)."""
    model = bundled.locate()
    ctx = min(n_ctx or settings.defaults.n_ctx, model.context_length)
    return ModelSpec(path=str(model.path), model_id=model.id,
                     options=load_options(settings, ctx), fallback_format=model.chat_format,
                     name=model.name)


def make_resolver(get_settings: Callable[[], AppSettings]) -> Callable[[str | None, int],
                                                                       ModelSpec]:
    """A resolver for the chat controller: None or the bundled id give the bundled
    model; anything else must be an installed model."""

    def resolve(model_id: str | None, n_ctx: int) -> ModelSpec:
        settings = get_settings()
        wanted = model_id or settings.model_id
        try:
            if wanted is None or wanted == bundled.manifest().id:
                return bundled_spec(settings, n_ctx)
        except bundled.BundledModelError as exc:
            raise LookupError(str(exc)) from exc
        raise LookupError(f"The model {wanted!r} is not installed. Pick another model for "
                          "this chat, or download it from the Models page.")

    return resolve
