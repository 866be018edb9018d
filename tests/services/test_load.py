"""500 messages in a row through the chat send path (``ChatController.send`` with the real
inference service and the bundled model): every request ends with exactly one final
signal, nothing stays "generating", and resident memory stays within a stated bound.

The measured numbers are written to the test's output (``-s``) and recorded in
docs/performance.md; the bound is on growth after a warm-up, as the first messages
load the model and fill caches once. The engine keeps the KV state of recent chats in
RAM up to a cap (256 MiB by default), which a run over many chats fills by design; here
the cap is 16 MiB, so what the bound catches is memory that nothing caps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pytestqt.qtbot import QtBot

from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.core.store import ConversationStore
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService, ModelState
from llamadesk.services.resolver import make_resolver

MESSAGES = int(os.environ.get("LLAMADESK_LOAD_MESSAGES", "500"))
PER_CHAT = 5  # a new chat now and then keeps every prompt short
KV_CACHE_BYTES = 16 * 1024 * 1024
WARM_UP = 50
#: Resident memory may grow this much from the warm-up to the last message.
RSS_GROWTH_BOUND = 64 * 1024 * 1024
WAIT_MS = 120_000
PARAMS = SamplingParams(max_tokens=2, n_ctx=512, temperature=0.7, seed=7)


@pytest.fixture
def controller(tmp_path: Path, bundled_model_path: Path) -> Iterator[ChatController]:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    inference = InferenceService(kv_cache_bytes=KV_CACHE_BYTES)
    settings = AppSettings(defaults=PARAMS, hardware=HardwareSettings(n_threads=1))
    yield ChatController(store, inference, make_resolver(lambda: settings))
    inference.shutdown()
    store.close()


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


@pytest.mark.slow
def test_500_messages_each_end_with_exactly_one_final_signal(
        qtbot: QtBot, controller: ChatController) -> None:
    finals: list[tuple[str, int]] = []
    controller.reply_finished.connect(lambda cid, _m: finals.append(("finished", cid)))
    controller.reply_failed.connect(lambda cid, reason: finals.append((f"failed: {reason}",
                                                                      cid)))
    store = controller.store
    conversation = store.create_conversation(params=PARAMS)
    rss_warm = 0
    started = time.monotonic()
    for n in range(1, MESSAGES + 1):
        if n % PER_CHAT == 1 and n > 1:
            conversation = store.create_conversation(params=PARAMS)
        before = len(finals)
        assert controller.send(conversation.id, f"Message {n}: one word please.") is not None
        qtbot.waitUntil(lambda before=before: len(finals) > before, timeout=WAIT_MS)
        assert finals[before:] == [("finished", conversation.id)], finals[before:]
        assert not controller.busy and not controller.inference.busy
        if n == WARM_UP:
            rss_warm = rss()
    qtbot.wait(100)  # a stray late signal would arrive here
    elapsed = time.monotonic() - started
    rss_end = rss()

    assert len(finals) == MESSAGES and {kind for kind, _ in finals} == {"finished"}
    assert controller.inference.state == ModelState.READY
    chats = store.list_conversations()
    stored = [m for c in chats for m in store.messages(c.id)]
    assert sum(m.role == Role.USER for m in stored) == MESSAGES
    assert sum(m.role == Role.ASSISTANT for m in stored) == MESSAGES
    growth = rss_end - rss_warm
    print(f"\n{MESSAGES} messages in {elapsed:.1f} s ({elapsed / MESSAGES * 1000:.0f} ms each); "
          f"RSS after {WARM_UP}: {rss_warm / 2**20:.1f} MiB, at the end: "
          f"{rss_end / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB "
          f"(bound {RSS_GROWTH_BOUND / 2**20:.0f} MiB)")
    assert growth < RSS_GROWTH_BOUND
