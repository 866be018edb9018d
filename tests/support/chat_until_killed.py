"""Chat with the bundled model, message after message, until killed.

    python chat_until_killed.py DATABASE [MARKER]

With MARKER, DATABASE is the app's own (in $LLAMADESK_HOME), opened encrypted as the
app opens it, and every question carries MARKER (tests/e2e/test_encrypted_kill_reply.py
looks for it in every file afterwards).

The real send path: a ``ChatController`` with the real ``InferenceService`` (llama.cpp)
and the real ``ConversationStore``. Reply checkpoints are written at every streamed
batch, so commits happen all the time. After each message's commit has returned, one
line goes to stdout and is flushed:

    ready
    committed <id> <role> <sha1 of the text>

``tests/e2e/test_power_loss.py`` (and ``tools/stress_kill.py``) SIGKILL this process at
random moments and check that the database holds every message announced so.

    python chat_until_killed.py --fork-each

reads ``DATABASE<TAB>MARKER`` lines on stdin and forks one chatting child per line,
after importing Python, Qt and llama.cpp once (about 0.7 s of CPU a child would
otherwise pay): it says ``pid <pid>`` for each child and ``exit <status>`` once the
child has ended (negative: killed by that signal). Each child is a process of its own
that builds its store, service and model from nothing, as a fresh start does.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer

from llamadesk.core.conversation import Message, SamplingParams
from llamadesk.core.paths import app_paths
from llamadesk.core.settings import AppSettings, HardwareSettings
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_open import open_store
from llamadesk.services import chat
from llamadesk.services.chat import ChatController
from llamadesk.services.inference import InferenceService
from llamadesk.services.resolver import make_resolver

PARAMS = SamplingParams(max_tokens=12, n_ctx=512, temperature=0.8, seed=-1)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(database: Path, marker: str = "") -> int:
    """Chat until killed (or until a reply fails, which exits 1)."""
    app = QCoreApplication([])
    chat.CHECKPOINT_INTERVAL_S = 0.0  # a checkpoint commit at every streamed batch
    store = open_store(app_paths()) if marker else ConversationStore(database)
    inference = InferenceService()
    # One thread: llama.cpp's threads spin on a busy machine; one keeps the pace steady.
    settings = AppSettings(defaults=PARAMS, hardware=HardwareSettings(n_threads=1))
    controller = ChatController(store, inference, make_resolver(lambda: settings))
    for message in controller.recover_interrupted():
        _announce(message)
    conversation = store.create_conversation(params=PARAMS)
    questions = itertools.count(1)

    def ask() -> None:
        n = next(questions)
        if n % 4 == 0:  # a new chat now and then keeps the prompts short
            nonlocal conversation
            conversation = store.create_conversation(params=PARAMS)
        controller.send(conversation.id, f"Question {n}{marker}: name a colour and a fruit.")

    # The next question once the reply is announced (synced), not when it ends: its own
    # commit would otherwise come between the reply's commit and its announcement, and
    # the power-loss test's trace cannot tell which of the thread's writes an fsync
    # covered for which message.
    awaited: set[int] = set()

    def finished(_cid: int, message: Message | None) -> None:
        if message is None:
            QTimer.singleShot(0, ask)
        else:
            awaited.add(message.id)

    def stored(message: Message) -> None:
        _announce(message)
        if message.id in awaited:
            awaited.discard(message.id)
            QTimer.singleShot(0, ask)

    def failed(_cid: int, reason: str) -> None:
        _say(f"failed {reason}")
        app.exit(1)

    def loaded(_info: object) -> None:
        _say("ready")
        ask()

    controller.message_added.connect(stored)
    controller.reply_finished.connect(finished)
    controller.reply_failed.connect(failed)
    inference.model_loaded.connect(loaded)
    inference.model_load_failed.connect(lambda reason: failed(0, reason))
    inference.load_model(make_resolver(lambda: settings)(None, PARAMS.n_ctx))
    status = app.exec()
    inference.shutdown()
    store.close()
    return status


def _announce(message: Message) -> None:
    digest = hashlib.sha1(message.content.encode("utf-8")).hexdigest()
    _say(f"committed {message.id} {message.role} {digest}")


def fork_each() -> int:
    """Fork a chatting child for each request on stdin (see the module's docstring)."""
    import llama_cpp  # noqa: F401  (loaded once here; a child loads only the model)

    from llamadesk.services import engine  # noqa: F401

    for line in sys.stdin:
        database, _, marker = line.rstrip("\n").partition("\t")
        pid = os.fork()
        if pid == 0:  # the child: chat until killed, never back into this loop
            status = 1
            try:
                status = main(Path(database), f" {marker}" if marker else "")
            finally:
                sys.stdout.flush()
                os._exit(status)
        _say(f"pid {pid}")
        _, wait_status = os.waitpid(pid, 0)
        _say(f"exit {os.waitstatus_to_exitcode(wait_status)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--fork-each"]:
        sys.exit(fork_each())
    sys.exit(main(Path(sys.argv[1]), f" {sys.argv[2]}" if len(sys.argv) > 2 else ""))
