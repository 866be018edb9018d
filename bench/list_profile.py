"""Where the time of "show the chat list of 10,000 chats" goes, step by step, in wall
and GUI-thread CPU time, through the real window (a bench row's steps taken apart).

    QT_QPA_PLATFORM=offscreen python bench/list_profile.py [--runs 7]

A database of 10,000 chats (2 messages each, one long chat) is built in a temporary
folder. Steps: a fresh ``ConversationListModel`` (count and first page), ``setModel``,
the event loop until the list has painted (the bench row ends there), and beside them
a repaint of the whole window (which the row used to add) and of the list alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_keychain
from gui_metrics import PaintCounter
from harness import AppHarness, qapp
from store_metrics import StoreSizes, build_database


def _timed(step: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    step()
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from llamadesk.ui.conversation_list import ConversationListModel

    work = Path(tempfile.mkdtemp(prefix="list-profile-"))
    bench_keychain.install(work)  # the store's key, on a machine with no keychain
    db = work / "chats.sqlite3"
    long_id = build_database(db, StoreSizes(conversations=10_000, messages=20_000,
                                            long_conversation=200))
    h = AppHarness(work / "home", database=db)
    app = qapp()
    view = h.window.sidebar.list_view
    steps: dict[str, list[tuple[float, float]]] = {}
    try:
        h.select(long_id)
        print(f"load average {os.getloadavg()}")
        painted = PaintCounter(view.viewport())
        holder: list[ConversationListModel] = []

        def until_painted() -> None:
            while not painted.count:
                app.processEvents()

        for _ in range(args.runs + 1):
            app.processEvents()
            painted.count = 0
            row = {
                "model (count, first page)": _timed(
                    lambda: holder.append(ConversationListModel(h.store))),
                "setModel": _timed(lambda: view.setModel(holder[-1])),
                "events until the list painted": _timed(until_painted),
                "window.repaint() (the old row's)": _timed(h.window.repaint),
                "list viewport repaint()": _timed(view.viewport().repaint),
            }
            view.setModel(h.window.sidebar.conversations)
            for name, value in row.items():
                steps.setdefault(name, []).append(value)
        for name, values in steps.items():
            values = values[1:]  # the first is a warm-up
            print(f"{name:34s} wall {statistics.median(v[0] for v in values):6.2f} ms"
                  f"  CPU {statistics.median(v[1] for v in values):6.2f} ms")
    finally:
        h.close()
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
