"""The engine's errors, apart so that what raises or names them beside the engine (the
rendering of tool chats, the local API, the window) needs no llama.cpp."""

from __future__ import annotations


class EngineError(Exception):
    """A readable reason why a model could not be loaded or prompted."""


class ContextFullError(EngineError):
    """The prompt leaves no room for a reply in the model's context."""

    def __init__(self, message: str, n_prompt: int | None = None,
                 n_ctx: int | None = None) -> None:
        super().__init__(message)
        self.n_prompt = n_prompt
        self.n_ctx = n_ctx


class ToolsUnsupportedError(EngineError):
    """Tools were asked of a model whose chat template does not take them."""


class ModelLoadError(EngineError):
    """A job's model could not be loaded."""
