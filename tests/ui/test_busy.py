"""One answer to "is anything busy?" (``services/activity.Busy``), and its consumers in
the window: closing (which waits for a reply in any chat, not only the one on screen) and
the local API's status line (the requests it has in hand). ``serve``'s use of it is in
tests/e2e/test_cli_serve.py."""

from __future__ import annotations

import threading

import httpx
import pytest
from fake_inference import FakeReply
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory, fake_of

from llamadesk.core import bundled
from llamadesk.core.conversation import FinishReason, Role
from llamadesk.services.activity import Activity

WAIT_MS = 10_000


@pytest.mark.parametrize(("activity", "words"), [
    (Activity(), "nothing"),
    (Activity(replies=True, jobs=True), "a reply"),
    (Activity(requests=2, jobs=True, loading=True), "2 API requests and a model loading"),
    (Activity(replies=True, requests=1, writes=1),
     "a reply, 1 API request and 1 unsaved change"),
    (Activity(jobs=True), "work on the model"),
])
def test_what_is_under_way_in_words(activity: Activity, words: str) -> None:
    assert activity.describe() == words
    assert activity.busy is (words != "nothing")


def test_closing_waits_for_a_reply_in_a_chat_not_on_screen(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    busy = window.ctx.busy
    assert not busy.now().replies
    fake_of(window).script(FakeReply.long())
    asked = window.current_id
    window.chat.composer.setPlainText("Tell me everything.")
    window.chat.composer.submit()
    qtbot.waitUntil(lambda: len(window.controller.live_text(asked)) > 20, timeout=WAIT_MS)
    window.new_conversation()  # the chat on screen is idle; the app is not
    assert not window.chat.busy
    assert busy.now().replies and busy.now().jobs
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        window.close()
        assert window.isVisible(), "the window waits for the reply to be stored"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    stored = window.store.messages(asked)[-1]
    assert stored.role == Role.ASSISTANT and stored.stats is not None
    assert stored.stats.finish_reason == FinishReason.STOPPED
    assert not busy.now().busy


@pytest.mark.model
def test_the_api_status_line_counts_the_requests_in_hand(
        qtbot: QtBot, real_window: WindowFactory) -> None:
    window = real_window()
    api = window.local_api
    assert api.start(port=0) and api.server is not None
    base = api.server.base_url
    assert "running or queued" not in api.label.text()
    first_piece, release = threading.Event(), threading.Event()
    outcome: list[int] = []

    def stream() -> None:
        body = {"model": bundled.manifest().id, "max_tokens": 400, "stream": True,
                "messages": [{"role": "user", "content": "Tell a long story."}]}
        with httpx.Client(timeout=300) as http, http.stream(
                "POST", f"{base}/chat/completions", json=body) as response:
            outcome.append(response.status_code)
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    first_piece.set()
                    release.wait(60)
                    break  # hang up mid-reply: the server cancels the job

    client = threading.Thread(target=stream)
    client.start()
    qtbot.waitUntil(first_piece.is_set, timeout=240_000)
    api.refresh()
    assert window.ctx.busy.now().requests == 1
    assert api.label.text().endswith("· 1 running or queued")
    release.set()
    client.join(60)
    assert outcome == [200]
    qtbot.waitUntil(lambda: window.ctx.busy.now().requests == 0, timeout=60_000)
    api.refresh()
    assert "running or queued" not in api.label.text()
