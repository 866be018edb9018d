"""One interface for whatever writes a reply: the local llama.cpp engine
(``services.engine.LlamaEngine``) or a remote OpenAI-compatible server
(``services.remote_engine.RemoteEngine``).

This module stays light (no HTTP client, no llama.cpp), so the window can name remote
targets without loading either at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.services.engine_types import GenerationRequest, GenerationResult

#: Where the text of a chat with a local model goes.
THIS_COMPUTER = "this computer"


@dataclass(frozen=True)
class BackendCapabilities:
    """What a backend can do, for the window and the command line to show."""

    remote: bool
    destination: str  # where a chat's text is sent: THIS_COMPUTER or a server's URL
    keeps_context: bool  # keeps each chat's context between replies (KV state)
    plans_context: bool  # the app decides which messages fit the model's context


@dataclass(frozen=True)
class RemoteTarget:
    """Where a remote reply is written: a connection and the server's own model id.
    ``api_key`` reads the key from the keychain when a request is made, so the key is
    never part of a spec, a repr or a log line."""

    connection: Connection
    model: str
    settings: RemoteSettings = field(default_factory=RemoteSettings)
    api_key: Callable[[], str | None] = field(default=lambda: None, compare=False,
                                              repr=False)

    @property
    def model_id(self) -> str:
        """The app-wide id: ``<connection>/<model>``."""
        return self.connection.model_id(self.model)

    def capabilities(self) -> BackendCapabilities:
        """A remote server's capabilities: text goes to its URL; it keeps no context."""
        return BackendCapabilities(remote=True, destination=self.connection.base_url,
                                   keeps_context=False, plans_context=False)


LOCAL_CAPABILITIES = BackendCapabilities(remote=False, destination=THIS_COMPUTER,
                                         keeps_context=True, plans_context=True)


class ChatBackend(Protocol):
    """Writes replies; used from one thread at a time."""

    def generate(self, request: GenerationRequest, on_text: Callable[[str], None],
                 cancel: threading.Event) -> GenerationResult:
        """Stream a reply to ``request`` through ``on_text``; stop when ``cancel`` is
        set (the partial reply comes back, finish reason stopped). Raises EngineError
        with a readable reason when no reply could be started."""
        ...

    def list_models(self) -> tuple[str, ...]:
        """The ids of the models this backend can answer with."""
        ...

    def capabilities(self) -> BackendCapabilities:
        """What this backend can do, and where the text goes."""
        ...

    def unload(self) -> None:
        """Free what the backend holds (a model, a connection)."""
        ...
