"""Helpers for the local API's tests: a real server on a free loopback port."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import openai

from llamadesk.api.documents import DocumentSearch
from llamadesk.api.server import ApiServer, ApiSettings
from llamadesk.core.conversation import SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings
from llamadesk.services.inference import InferenceService, ModelSpec
from llamadesk.services.resolver import make_resolver

N_CTX = 2048


@dataclass
class LiveApi:
    server: ApiServer
    service: InferenceService
    model_id: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, **kwargs: object) -> openai.OpenAI:
        options: dict[str, object] = {"api_key": "unused", "max_retries": 0, "timeout": 300}
        options.update(kwargs)
        return openai.OpenAI(base_url=self.base_url, **options)  # type: ignore[arg-type]


def resolver_for_tests() -> Callable[[str], ModelSpec]:
    """The app's resolver as the API uses it (``api_spec``), with a small default context
    and one thread (tests/conftest.py says why)."""
    settings = AppSettings(defaults=SamplingParams(n_ctx=N_CTX))
    resolve = make_resolver(lambda: settings, ModelRegistry(app_paths().ensure()))

    def spec(model_id: str) -> ModelSpec:
        found = resolve.api_spec(model_id)
        return replace(found, options=replace(found.options, n_threads=1, n_gpu_layers=0))

    return spec


def start_server(service: InferenceService, documents: DocumentSearch | None = None,
                 **settings: object) -> ApiServer:
    """An API server on a free loopback port, started (``documents``: its collections'
    search, if it has any)."""
    registry = ModelRegistry(app_paths().ensure())
    chosen = ApiSettings(**{"host": "127.0.0.1", "port": 0, **settings})  # type: ignore[arg-type]
    server = ApiServer(service, registry.models, resolver_for_tests(), chosen,
                       documents=documents)
    server.start()
    return server


