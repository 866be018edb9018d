"""Settings → Local API in the window: on and off at once, the status bar's note, the
list of recent requests, and who may use it (Preferences → Local API); the window's own
chats keep working beside it."""

from __future__ import annotations

import httpx
import openai
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core import bundled
from llamadesk.core.settings import AppSettings, LocalApiSettings, load_settings
from llamadesk.ui.local_api import RecentRequestsDialog
from llamadesk.ui.local_api_page import REQUIRE_KEY
from llamadesk.ui.preferences import PreferencesDialog


def test_the_local_api_switches_on_and_off_from_the_window(real_window: WindowFactory,
                                                           qtbot: QtBot) -> None:
    window = real_window()
    api = window.local_api
    action = api.toggle_action
    assert action is not None and action.isEnabled() and not action.isChecked()
    assert not api.label.isVisible(), "off by default"
    assert api.start(port=0)
    assert action.isChecked() and api.label.isVisible()
    assert api.server is not None
    port = api.server.port
    assert api.label.text() == f"API on :{port}"
    client = openai.OpenAI(base_url=api.server.base_url, api_key="unused", max_retries=0,
                           timeout=300)
    reply = client.chat.completions.create(
        model=bundled.manifest().id, max_tokens=4,
        messages=[{"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content
    dialog = RecentRequestsDialog(api, window)
    assert dialog.table.rowCount() == 1
    assert dialog.table.item(0, 2).text() == bundled.manifest().id
    assert dialog.table.item(0, 5).text() == "finished"
    assert dialog.table.item(0, 1).text().startswith("127.0.0.1:")
    dialog.close()
    action.setChecked(False)
    assert api.server is None and not api.label.isVisible()
    try:
        client.models.list()
        raise AssertionError("still serving after it was switched off")
    except openai.APIConnectionError:
        pass


def test_a_port_in_use_is_reported_and_the_switch_stays_off(real_window: WindowFactory) -> None:
    first, second = real_window(), real_window()
    assert first.local_api.start(port=0)
    assert first.local_api.server is not None
    messages: list[str] = []
    second.local_api.notice.connect(messages.append)
    assert not second.local_api.start(port=first.local_api.server.port)
    assert messages and "Cannot listen" in messages[0]
    assert second.local_api.toggle_action is not None
    assert not second.local_api.toggle_action.isChecked()
    first.shutdown.finish()
    assert first.local_api.server is None, "closing the window stops the API"


def test_without_a_submitting_service_the_switch_is_disabled(
        fake_window: WindowFactory) -> None:
    window = fake_window()
    assert window.local_api.toggle_action is not None
    assert not window.local_api.toggle_action.isEnabled()


def test_api_chats_are_kept_as_conversations_only_when_asked(real_window: WindowFactory,
                                                              qtbot: QtBot) -> None:
    window = real_window()
    api = window.local_api
    assert api.start(port=0) and api.server is not None
    client = openai.OpenAI(base_url=api.server.base_url, api_key="unused", max_retries=0,
                           timeout=300)

    def ask(text: str) -> str:
        reply = client.chat.completions.create(
            model=bundled.manifest().id, max_tokens=6, seed=2,
            messages=[{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Hi there"},
                      {"role": "assistant", "content": "Hello!"},
                      {"role": "user", "content": text}])
        return reply.choices[0].message.content or ""

    before = window.store.count_conversations()
    ask("Not kept, please.")
    qtbot.wait(200)  # time for a (wrong) keep to arrive on the GUI thread
    assert window.store.count_conversations() == before, "off by default: nothing stored"

    assert api.keep_action is not None
    api.keep_action.setChecked(True)
    assert window.ctx.settings.current.local_api.store_conversations
    with qtbot.waitSignal(api.conversation_kept, timeout=60_000) as kept:
        answer = ask("Name a colour.")
    conversation = kept.args[0]
    assert conversation.origin == "api" and conversation.title == "Hi there"
    assert conversation.system_prompt == "Be brief."
    messages = window.store.messages(conversation.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Hi there"), ("assistant", "Hello!"), ("user", "Name a colour."),
        ("assistant", answer)]
    assert messages[-1].model_id == bundled.manifest().id
    assert messages[-1].stats.completion_tokens
    # The sidebar lists it first, marked as from the API.
    side = window.sidebar.conversations
    assert side.index(0).data() == f"⇄ API · {conversation.title}"
    assert "Kept from the local API" in side.index(0).data(Qt.ItemDataRole.ToolTipRole)


def test_the_switch_holds_for_the_next_launch(real_window: WindowFactory) -> None:
    window = real_window()
    assert window.local_api.toggle_action is not None
    window.local_api.toggle_action.setChecked(True)
    assert window.ctx.settings.current.local_api.enabled
    settings = window.ctx.settings.current
    window.shutdown.finish()  # quitting stops the API but leaves the switch on
    again = real_window(settings=settings)
    assert again.local_api.server is not None, "on again at launch"
    again.local_api.toggle_action.setChecked(False)  # type: ignore[union-attr]
    assert not again.ctx.settings.current.local_api.enabled


def test_who_may_use_the_api_is_set_in_preferences_and_applies_at_once(
        real_window: WindowFactory, qtbot: QtBot) -> None:
    window = real_window()
    api = window.local_api
    assert api.start(port=0) and api.server is not None
    base = api.server.base_url
    page_origin = "http://127.0.0.1:5173"
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{base}/models", headers={"Origin": page_origin}).status_code == 403
        assert http.get(f"{base}/models", headers={"Host": "llm.home.arpa"}).status_code \
            == 403
    seen: list[str] = []

    def edit() -> None:
        dialog = QApplication.activeModalWidget()
        try:
            assert isinstance(dialog, PreferencesDialog)
            page = dialog.local_api_page
            assert dialog.tabs.currentWidget() is page, "opened on the Local API tab"
            assert not page.require_key.isChecked() and page.require_key.text() == REQUIRE_KEY
            qtbot.mouseClick(page.require_key, Qt.MouseButton.LeftButton)
            qtbot.keyClicks(page.origins, "127.0.0.1:5173")
            assert page.problem.isVisible() and "not a web origin" in page.problem.text()
            dialog.accept()  # OK with a bad entry: the dialog stays, and says why
            seen.append(f"open={dialog.isVisible()}")
            page.origins.setPlainText(f"{page_origin}/\nHTTPS://App.Example:443")
            qtbot.keyClicks(page.hosts, "LLM.home.arpa")
            assert not page.problem.isVisible()
            qtbot.mouseClick(page.copy_key, Qt.MouseButton.LeftButton)
            seen.append(QApplication.clipboard().text())
            assert "Copied a new key" in page.key_note.text()
            ok = dialog.findChild(QDialogButtonBox).button(
                QDialogButtonBox.StandardButton.Ok)
            qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        finally:
            if dialog is not None and dialog.isVisible():
                dialog.reject()

    assert api.access_action is not None
    QTimer.singleShot(0, edit)
    api.access_action.trigger()
    # Preferences are saved off the GUI thread (ui/operations.py): wait for the outcome.
    qtbot.waitUntil(lambda: window.ctx.operations.in_flight == 0, timeout=10_000)
    assert seen[0] == "open=True"
    key = api.keys.get()
    assert key and seen[1] == key and key.startswith("ld-"), "the copied key is the key"
    wanted = LocalApiSettings(enabled=True, require_key=True,
                              allowed_origins=(page_origin, "https://app.example"),
                              allowed_hosts=("llm.home.arpa",))
    assert window.ctx.settings.current.local_api == wanted
    assert load_settings(window.ctx.paths.settings_file).local_api == wanted, "kept"
    assert api.server is not None and api.server.base_url == base, "not restarted"
    bearer = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{base}/models").status_code == 401, "the key is required now"
        assert http.get(f"{base}/models", headers=bearer).status_code == 200
        allowed = http.get(f"{base}/models", headers={"Origin": page_origin, **bearer})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == page_origin
        assert http.get(f"{base}/models", headers={"Host": "llm.home.arpa", **bearer}
                        ).status_code == 200
        assert http.get(f"{base}/models", headers={"Origin": "https://evil.example",
                                                   **bearer}).status_code == 403
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
    reply = client.chat.completions.create(model=bundled.manifest().id, max_tokens=3,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content


def test_at_launch_the_api_requires_the_key_when_asked(real_window: WindowFactory) -> None:
    settings = AppSettings(local_api=LocalApiSettings(enabled=True, require_key=True))
    window = real_window(settings=settings)
    api = window.local_api
    assert api.server is not None and api.server.settings.api_key == api.keys.get()
    keyless = openai.OpenAI(base_url=api.server.base_url, api_key="unused", max_retries=0)
    try:
        keyless.models.list()
        raise AssertionError("served without the key")
    except openai.AuthenticationError as exc:
        assert exc.status_code == 401
    keyed = openai.OpenAI(base_url=api.server.base_url, api_key=api.keys.get(),
                          max_retries=0)
    assert bundled.manifest().id in [m.id for m in keyed.models.list()]
    # Turned off in Preferences, programs on this computer need no key again.
    window.ctx.settings.update(AppSettings(local_api=LocalApiSettings(enabled=True)))
    assert api.server.settings.api_key is None
    assert keyless.models.list().data
