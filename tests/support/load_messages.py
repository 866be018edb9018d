"""500 messages in a row through the chat send path, as a process of its own.

    python load_messages.py DATABASE

``ChatController.send`` with the real ``InferenceService`` on the bundled model and a
real SQLite store, one message after another, a new chat every 5. After each message
it notes what is wrong (a send refused, anything but exactly one ``reply_finished`` for
that chat, the controller or the service still busy), and resident memory after the
warm-up and at the end. The last line of stdout is a JSON report, which
tests/services/test_load.py checks; Qt's warnings are in it too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer, QtMsgType, qInstallMessageHandler

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
WAIT_MS = 120_000
PARAMS = SamplingParams(max_tokens=2, n_ctx=512, temperature=0.7, seed=7)


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def main(database: Path) -> dict[str, Any]:
    app = QCoreApplication([])
    warnings: list[str] = []

    def handler(kind: QtMsgType, _context: object, text: str) -> None:
        if kind != QtMsgType.QtDebugMsg and kind != QtMsgType.QtInfoMsg:
            warnings.append(text)
    qInstallMessageHandler(handler)
    store = ConversationStore(database)
    inference = InferenceService(kv_cache_bytes=KV_CACHE_BYTES)
    settings = AppSettings(defaults=PARAMS, hardware=HardwareSettings(n_threads=1))
    controller = ChatController(store, inference, make_resolver(lambda: settings))
    finals: list[tuple[str, int]] = []
    loop = QEventLoop()
    controller.reply_finished.connect(lambda cid, _m: (finals.append(("finished", cid)),
                                                       loop.quit()))
    controller.reply_failed.connect(lambda cid, reason: (finals.append((f"failed: {reason}",
                                                                        cid)), loop.quit()))
    problems: list[str] = []
    conversation = store.create_conversation(params=PARAMS)
    rss_warm = 0
    started = time.monotonic()
    for n in range(1, MESSAGES + 1):
        if n % PER_CHAT == 1 and n > 1:
            conversation = store.create_conversation(params=PARAMS)
        before = len(finals)
        if controller.send(conversation.id, f"Message {n}: one word please.") is None:
            problems.append(f"message {n}: send refused")
            break
        deadline = time.monotonic() + WAIT_MS / 1000
        QTimer.singleShot(WAIT_MS, loop.quit)  # ends the wait if no final signal comes
        while len(finals) == before and time.monotonic() < deadline:
            loop.exec()
        if finals[before:] != [("finished", conversation.id)]:
            problems.append(f"message {n}: {finals[before:]}")
            break
        if controller.busy or controller.inference.busy:
            problems.append(f"message {n}: still busy after its final signal")
        if n == WARM_UP:
            rss_warm = rss()
    QTimer.singleShot(100, loop.quit)  # a stray late signal would arrive here
    loop.exec()
    elapsed = time.monotonic() - started
    chats = store.list_conversations()
    stored = [m for c in chats for m in store.messages(c.id)]
    report = {
        "messages": MESSAGES, "warm_up": WARM_UP, "problems": problems,
        "finals": len(finals), "kinds": sorted({kind for kind, _ in finals}),
        "ready": inference.state == ModelState.READY,
        "user": sum(m.role == Role.USER for m in stored),
        "assistant": sum(m.role == Role.ASSISTANT for m in stored),
        "rss_warm": rss_warm, "rss_end": rss(), "elapsed_s": round(elapsed, 1),
        "qt_warnings": warnings,
    }
    inference.shutdown()
    store.close()
    del app
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))), flush=True)
