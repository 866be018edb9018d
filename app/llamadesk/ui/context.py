"""What the window and its parts need from the app."""

from __future__ import annotations

from dataclasses import dataclass, field

from llamadesk.core.paths import AppPaths
from llamadesk.core.presets import PresetBook
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.store import ConversationStore
from llamadesk.services.activity import Busy
from llamadesk.services.chat import ChatController
from llamadesk.services.inference_api import InferenceApi
from llamadesk.services.remote_models import RemoteModelsService
from llamadesk.services.resolver import ModelResolver
from llamadesk.services.settings import SettingsService
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.operations import Operations


@dataclass(frozen=True)
class AppContext:
    """The app's data and services, built once by ``ui.app.build_window`` (or a test)
    and handed to the window, which hands each part what it uses."""

    paths: AppPaths
    store: ConversationStore
    inference: InferenceApi
    controller: ChatController
    resolver: ModelResolver
    settings: SettingsService
    registry: ModelRegistry
    names: ModelNames
    presets: PresetBook
    #: The models of the remote connections (None: no remote models, as in most tests).
    remote_models: RemoteModelsService | None = None
    #: The window's writes and the one change event its views listen to.
    operations: Operations = field(default_factory=Operations)
    #: The one answer to "is anything busy?" (made here, from the parts above).
    busy: Busy = field(init=False)

    def __post_init__(self) -> None:
        busy = Busy(self.inference, self.controller)
        busy.follow_writes(self.operations)
        object.__setattr__(self, "busy", busy)  # frozen: set once, here
