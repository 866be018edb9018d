"""Settings → Local API in the window: on and off at once, the status bar's note, and
the list of recent requests; the window's own chats keep working beside it."""

from __future__ import annotations

import openai
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core import bundled
from llamadesk.ui.local_api import RecentRequestsDialog


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
    first.shutdown_services()
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
    window.shutdown_services()  # quitting stops the API but leaves the switch on
    again = real_window(settings=settings)
    assert again.local_api.server is not None, "on again at launch"
    again.local_api.toggle_action.setChecked(False)  # type: ignore[union-attr]
    assert not again.ctx.settings.current.local_api.enabled
