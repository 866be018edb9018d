"""Remote models in the window, against a loopback OpenAI-compatible server: the picker
groups models by connection, a remote chat is marked with where its text goes, a reply
streams into it, Preferences → Connections adds and checks a connection, and turning
a connection off takes its models out of the picker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hub_fixtures import InMemoryKeyring
from openai_fault_server import MODEL, REPLY_PIECES, FaultServer
from pytestqt.qtbot import QtBot
from tiny_gguf import tiny_resources

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import FinishReason, MessageStats, Role, SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.presets import preset_book
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.remote_models import RemoteModelsService
from llamadesk.services.resolver import ModelResolver
from llamadesk.services.settings import SettingsService
from llamadesk.ui.context import AppContext
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.message_model import ChatRow
from llamadesk.ui.message_view import header_text
from llamadesk.ui.model_names import ModelNames
from llamadesk.ui.preferences import PreferencesDialog

WAIT_MS = 30_000
REMOTE_ID = f"faulty/{MODEL}"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def window(qtbot: QtBot, fault_server: FaultServer, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    # The local model is a tiny GGUF of this test's own; only the remote one answers.
    monkeypatch.setenv("LLAMADESK_RESOURCES", str(tiny_resources(tmp_path / "resources")))
    paths = app_paths().ensure()
    settings = SettingsService(paths.settings_file, AppSettings(
        defaults=SamplingParams(max_tokens=24, n_ctx=1024, seed=1),
        connections=(Connection("faulty", fault_server.url),),
        remote=RemoteSettings(read_timeout_s=10.0, max_retries=0)))
    remote_models = RemoteModelsService()
    remote_models.follow(settings.current)
    settings.changed.connect(remote_models.follow)
    store = ConversationStore(paths.database)
    registry = ModelRegistry(paths)
    inference = InferenceService()
    resolver = ModelResolver(settings, registry, remote_models.secrets)
    controller = ChatController(store, inference, resolver)
    made = MainWindow(AppContext(paths, store, inference, controller, resolver, settings,
                                 registry, ModelNames(), preset_book(paths.config_dir),
                                 remote_models))
    qtbot.addWidget(made)
    made.show()
    yield made
    made.shutdown.finish()  # stops the remote lists' thread too


def picker_rows(window: MainWindow) -> list[tuple[str, object, bool]]:
    picker = window.chat.model_picker
    model = picker.model()
    return [(picker.itemText(i), picker.itemData(i),
             bool(model.flags(model.index(i, 0)) & model.flags(model.index(i, 0)).ItemIsEnabled))
            for i in range(picker.count())]


def test_a_remote_chat_is_grouped_marked_and_answered(
        window: MainWindow, qtbot: QtBot, fault_server: FaultServer) -> None:
    picker = window.chat.model_picker
    qtbot.waitUntil(lambda: picker.findData(REMOTE_ID) >= 0, timeout=WAIT_MS)
    rows = picker_rows(window)
    assert ("Local", None, False) in rows and ("faulty", None, False) in rows
    assert rows.index(("Local", None, False)) < rows.index(("faulty", None, False)) \
        < picker.findData(REMOTE_ID)
    assert not window.chat.remote_marker.isVisible()
    index = picker.findData(REMOTE_ID)
    picker.setCurrentIndex(index)
    picker.activated.emit(index)
    conversation = window.store.get_conversation(window.current_id or 0)
    assert conversation is not None and conversation.model_id == REMOTE_ID
    assert window.ctx.settings.current.model_id != REMOTE_ID, "new chats stay local"
    marker = window.chat.remote_marker
    assert marker.isVisible() and "faulty" in marker.text()
    assert fault_server.url in marker.toolTip()
    window.chat.composer.setPlainText("Say hello.")
    shown: list[str] = []  # the status bar while the remote reply streams
    window.inference.token_batch_ready.connect(
        lambda _job, _text: shown.append(window.status.state_label.text()))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS) as done:
        window.chat.composer.submit()
    reply = done.args[1]
    assert reply is not None and reply.content == "".join(REPLY_PIECES)
    assert reply.model_id == REMOTE_ID
    assert shown and set(shown) == {"Generating on faulty…"}
    # and back after: the job's end comes from the inference thread as its own signal,
    # which may reach the window just after the stored reply
    qtbot.waitUntil(lambda: window.status.state_label.text() != "Generating on faulty…",
                    timeout=WAIT_MS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert window.grab().save(str(SCREENSHOTS / "remote-chat.png"))


def test_turning_a_connection_off_takes_its_models_away(
        window: MainWindow, qtbot: QtBot) -> None:
    picker = window.chat.model_picker
    qtbot.waitUntil(lambda: picker.findData(REMOTE_ID) >= 0, timeout=WAIT_MS)
    settings = window.ctx.settings
    off = tuple(replace(c, enabled=False) for c in settings.current.connections)
    settings.update(replace(settings.current, connections=off))
    qtbot.waitUntil(lambda: picker.findData(REMOTE_ID) < 0, timeout=WAIT_MS)
    assert all(text != "faulty" for text, _data, _on in picker_rows(window))


def test_preferences_adds_and_checks_a_connection(
        window: MainWindow, qtbot: QtBot, fault_server: FaultServer,
        monkeypatch: pytest.MonkeyPatch, memory_keyring: InMemoryKeyring) -> None:
    service = window.ctx.remote_models
    assert service is not None
    ops = window.ctx.operations
    assert PreferencesDialog(window.ctx.settings.current, window, None, service
                             ).connections_page is None, "its keys need the operations"
    dialog = PreferencesDialog(window.ctx.settings.current, window, None, service,
                               operations=ops)
    qtbot.addWidget(dialog)
    page = dialog.connections_page
    assert page is not None
    page.name.setText("second")
    page.url.setText("not an address")
    assert not page.save_current() and "http://" in page.status.text()
    page.url.setText(fault_server.url)
    page.key.setText("not a key")
    assert not page.save_current() and "Not a key" in page.status.text()
    assert ops.in_flight == 0 and service.secrets.api_key("second") is None
    # The key is stored by the window's operations, off the GUI thread (the keychain can
    # wait to be unlocked); the page says what became of it when that is done.
    stored_on: list[threading.Thread] = []
    real_set = service.secrets.set_api_key
    monkeypatch.setattr(service.secrets, "set_api_key", lambda name, key: (
        stored_on.append(threading.current_thread()), real_set(name, key))[1])
    page.key.setText("sk-ui-check-1234")
    assert page.save_current()
    assert page.key.text() == "", "the typed key does not stay in the field"
    assert ops.in_flight == 1
    qtbot.waitUntil(lambda: ops.in_flight == 0, timeout=WAIT_MS)
    assert stored_on and stored_on[0] is not threading.main_thread()
    assert memory_keyring.passwords[("LlamaDesk", "connection:second")] == "sk-ui-check-1234"
    assert service.secrets.api_key("second") == "sk-ui-check-1234"
    assert page.status.text() == "Key saved in the system keyring."
    with qtbot.waitSignal(service.checked, timeout=WAIT_MS,
                          check_params_cb=lambda name, _result: name == "second"):
        page.check_current()
    assert f"answers with 1 model: {MODEL}" in page.status.text()
    names = [c.name for c in dialog.result_settings().connections]
    assert names == ["faulty", "second"]
    dialog.tabs.setCurrentWidget(page)
    dialog.show()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert dialog.grab().save(str(SCREENSHOTS / "preferences-connections.png"))
    page.list.setCurrentRow(1)
    page.remove_current()
    assert [c.name for c in page.connections()] == ["faulty"]
    qtbot.waitUntil(lambda: ops.in_flight == 0, timeout=WAIT_MS)
    assert ("LlamaDesk", "connection:second") not in memory_keyring.passwords
    assert service.secrets.api_key("second") is None


def test_an_interrupted_remote_reply_says_why(qtbot: QtBot) -> None:
    stats = MessageStats(finish_reason=FinishReason.INTERRUPTED,
                         finish_detail="faulty closed the connection in the middle of the reply.")
    row = ChatRow(Role.ASSISTANT, "Hello from", model_id=REMOTE_ID, stats=stats)
    assert header_text(row, ModelNames()).endswith(
        "interrupted: faulty closed the connection in the middle of the reply.")
    crashed = ChatRow(Role.ASSISTANT, "Hel", stats=MessageStats(
        finish_reason=FinishReason.INTERRUPTED))
    assert header_text(crashed, ModelNames()).endswith("the app closed while writing")
