"""Remote failures seen from a chat: a reply cut off is stored, marked interrupted with
the reason; a hung server fails the reply with a clear error while the GUI thread keeps
running; an API key reaches the server but never a settings file, the database or a
log; and with no connection, a chat opens no socket beyond loopback."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hub_fixtures import InMemoryKeyring
from openai_fault_server import MODEL, FaultServer
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot
from secret_scan import files_holding

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import FinishReason, SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.secrets import SecretStore
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService, ModelState
from llamadesk.services.resolver import make_resolver
from llamadesk.services.settings import SettingsService

WAIT_MS = 60_000
REMOTE_ID = f"faulty/{MODEL}"
API_KEY = "sk-loopback-7c1d9e52a4"


@pytest.fixture
def db_path(home: Path) -> Path:
    """The app's own database, where the chat under test looks for it."""
    return app_paths().ensure().database


@pytest.fixture
def inference(qtbot: QtBot) -> Iterator[InferenceService]:
    service = InferenceService()
    yield service
    service.shutdown()


def make_controller(store: ConversationStore, inference: InferenceService,
                    settings: AppSettings, secrets: SecretStore | None = None
                    ) -> ChatController:
    return ChatController(store, inference, make_resolver(lambda: settings, None, secrets))


def remote_settings(server: FaultServer, read_timeout_s: float = 30.0) -> AppSettings:
    return AppSettings(connections=(Connection("faulty", server.url),),
                       remote=RemoteSettings(read_timeout_s=read_timeout_s, max_retries=0))


def test_a_reply_cut_off_by_the_server_is_kept_marked_interrupted(
        store: ConversationStore, inference: InferenceService, fault_server: FaultServer,
        qtbot: QtBot, home: Path) -> None:
    fault_server.set("cut")
    controller = make_controller(store, inference, remote_settings(fault_server))
    conversation = store.create_conversation(model_id=REMOTE_ID)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.send(conversation.id, "Say hello.")
    reply = done.args[1]
    assert reply is not None and reply.content == "Hello from"
    assert reply.model_id == REMOTE_ID
    store.close()
    reopened = ConversationStore(app_paths().database)  # as after a restart
    try:
        stored = reopened.messages(conversation.id)[-1]
    finally:
        reopened.close()
    assert stored.content == "Hello from"
    assert stored.stats.finish_reason == FinishReason.INTERRUPTED
    assert stored.stats.finish_detail == "faulty closed the connection in the middle of " \
                                         "the reply."


def test_a_hung_server_fails_the_reply_and_the_gui_thread_runs_on(
        store: ConversationStore, inference: InferenceService, fault_server: FaultServer,
        qtbot: QtBot) -> None:
    fault_server.set("hang")
    controller = make_controller(store, inference, remote_settings(fault_server, 1.0))
    conversation = store.create_conversation(model_id=REMOTE_ID)
    ticks: list[int] = []
    timer = QTimer()  # on the GUI thread: it ticks only while that thread is free
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(len(ticks)))
    timer.start()
    with qtbot.waitSignal(controller.reply_failed, timeout=WAIT_MS) as failed:
        controller.send(conversation.id, "Anyone there?")
    timer.stop()
    assert failed.args[0] == conversation.id and "did not answer in time" in failed.args[1]
    assert len(ticks) >= 2, "the GUI thread kept running while the server hung"
    assert len(store.messages(conversation.id)) == 1, "only the question is stored"


def test_the_api_key_reaches_the_server_and_nothing_on_disk(
        store: ConversationStore, inference: InferenceService, fault_server: FaultServer,
        memory_keyring: InMemoryKeyring, qtbot: QtBot, home: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fault_server.set(api_key=API_KEY)
    secrets = SecretStore(environ={})
    assert secrets.set_api_key("faulty", API_KEY).persisted
    service = SettingsService(app_paths().settings_file)
    service.update(remote_settings(fault_server))
    controller = make_controller(store, inference, service.current, secrets)
    conversation = store.create_conversation(model_id=REMOTE_ID)
    with qtbot.waitSignal(controller.reply_finished, timeout=WAIT_MS) as done:
        controller.send(conversation.id, "Say hello.")
    assert done.args[1] is not None and done.args[1].content
    assert fault_server.state.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"
    store.close()
    assert app_paths().settings_file.is_file() and app_paths().database.is_file()
    assert files_holding(home, API_KEY) == []
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(make_resolver(lambda: service.current, None, secrets)(
        REMOTE_ID, 1024))


def _peers() -> set[tuple[str, int]]:
    return {(c.raddr.ip, c.raddr.port)  # type: ignore[union-attr]
            for c in psutil.Process().net_connections(kind="inet") if c.raddr}


def test_with_no_connection_a_chat_opens_no_socket_beyond_loopback(
        store: ConversationStore, inference: InferenceService, qtbot: QtBot,
        bundled_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full chat with the local model, and one that names a remote model that no
    connection serves: no connection, no name lookup, no socket to anywhere."""
    attempts: list[str] = []
    connect, create_connection = socket.socket.connect, socket.create_connection

    def guarded_connect(sock: socket.socket, addr: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(f"connect {addr}")
        return connect(sock, addr)

    def guarded_create_connection(addr: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(f"create_connection {addr}")
        return create_connection(addr, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    before = _peers()
    settings = AppSettings(defaults=SamplingParams(max_tokens=16, n_ctx=1024, seed=1))
    assert settings.connections == ()
    controller = make_controller(store, inference, settings)
    conversation = store.create_conversation(params=settings.defaults)
    with qtbot.waitSignal(controller.reply_finished, timeout=180_000) as done:
        controller.send(conversation.id, "Hello!")
    assert done.args[1] is not None
    elsewhere = store.create_conversation(model_id="gpu-box/llama-3-70b")
    with qtbot.waitSignal(controller.reply_failed, timeout=WAIT_MS) as failed:
        controller.send(elsewhere.id, "Hello?")
    assert "not installed" in failed.args[1]
    assert attempts == []
    assert _peers() - before == set()


def test_a_remote_model_loads_nothing_and_leaves_the_local_state(
        inference: InferenceService, fault_server: FaultServer) -> None:
    spec = make_resolver(lambda: remote_settings(fault_server))(REMOTE_ID, 1024)
    states: list[str] = []
    inference.state_changed.connect(states.append)
    inference.load_model(spec)  # a load would announce "loading" at once, on this thread
    assert states == [] and inference.state == ModelState.UNLOADED
    assert inference.model_info is None
