"""Build the real window for a test: a real SQLite store, registry and chat controller,
and either the real inference service (llama.cpp, the bundled model) or, for tests of
UI behaviour only, FakeInferenceService."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_inference import FakeInferenceService
from pytestqt.qtbot import QtBot
from tiny_gguf import tiny_resources

from llamadesk.core.conversation import SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.presets import preset_book
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_open import open_store
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService, ModelSpec
from llamadesk.services.inference_api import InferenceApi
from llamadesk.services.resolver import ModelResolver, SettingsSource
from llamadesk.services.settings import SettingsService
from llamadesk.ui.context import AppContext
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.model_names import ModelNames

SHORT = SamplingParams(temperature=0.7, max_tokens=24, n_ctx=2048, seed=1)

Resolve = Callable[[str | None, int], ModelSpec]


class ScriptedResolver(ModelResolver):
    """The app's resolver with the answer a test chooses (a failure, a broken file);
    the default-model rule stays the real one."""

    def __init__(self, settings: SettingsSource, registry: ModelRegistry,
                 resolve: Resolve) -> None:
        super().__init__(settings, registry)
        self._resolve = resolve

    def __call__(self, model_id: str | None, n_ctx: int) -> ModelSpec:
        return self._resolve(model_id, n_ctx)


@dataclass
class WindowFactory:
    """Makes windows; everything made is shut down after the test."""

    qtbot: QtBot
    real: bool
    made: list[tuple[MainWindow, InferenceApi, ConversationStore]] = field(default_factory=list)

    def __call__(self, params: SamplingParams = SHORT, resolve: Resolve | None = None,
                 settings: AppSettings | None = None, *, show: bool = True) -> MainWindow:
        paths = app_paths().ensure()
        service = SettingsService(paths.settings_file, settings or AppSettings(defaults=params))
        store = open_store(paths)  # encrypted, as the app opens it
        registry = ModelRegistry(paths)
        inference: InferenceApi = InferenceService() if self.real else FakeInferenceService()
        resolver = (ScriptedResolver(service, registry, resolve) if resolve is not None
                    else ModelResolver(service, registry))
        controller = ChatController(store, inference, resolver)
        window = MainWindow(AppContext(paths, store, inference, controller, resolver, service,
                                       registry, ModelNames(), preset_book(paths.config_dir)))
        self.qtbot.addWidget(window)
        if show:
            window.show()
        self.made.append((window, inference, store))
        return window

    def close_all(self) -> None:
        for window, _inference, _store in self.made:
            window.shutdown.finish()  # the app's own sequence (ui/shutdown.py)
        self.made.clear()


@pytest.fixture
def real_window(qtbot: QtBot, bundled_model_path: object) -> Iterator[WindowFactory]:
    """Windows on the real inference service and the bundled model."""
    factory = WindowFactory(qtbot, real=True)
    yield factory
    factory.close_all()


@pytest.fixture
def fake_window(qtbot: QtBot, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[WindowFactory]:
    """Windows on FakeInferenceService (tests of UI behaviour only). The bundled model is
    a tiny GGUF in a resources folder of the test's own, so nothing here needs the real
    model file."""
    monkeypatch.setenv("LLAMADESK_RESOURCES", str(tiny_resources(tmp_path / "resources")))
    factory = WindowFactory(qtbot, real=False)
    yield factory
    factory.close_all()


def fake_of(window: MainWindow) -> FakeInferenceService:
    """The fake service behind a window made by ``fake_window``."""
    inference = window.inference
    assert isinstance(inference, FakeInferenceService)
    return inference
