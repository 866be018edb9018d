"""What the GUI thread does while a reply streams into the 1,000-message chat, measured
so that the machine's load does not count: a 5 ms heartbeat that also reads the GUI
thread's own CPU time (``time.thread_time``) at every tick. A wall-clock gap with little
CPU in it was another process's doing; CPU in a gap was the app's.

    QT_QPA_PLATFORM=offscreen python bench/gui_profile.py [--tokens 300] [--runs 2]
        [--profile FILE] [--blocks] [--unprepared]

Prints, per run: the longest wall-clock gap, the most GUI-thread CPU in one gap, the
five largest CPU gaps, and GUI-thread CPU per streamed token; with ``--profile``, a
cProfile of the GUI thread over the runs (sorted by cumulative time) goes to FILE;
with ``--blocks``, the CPU of named methods per call (``gui_blocks.py``) and which of
them fell in the largest CPU gaps.
A first send (not measured) pays what only a chat's first send pays.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer, Slot

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_keychain
from gui_blocks import Blocks
from gui_metrics import Heartbeat
from harness import AppHarness
from llamadesk.core.conversation import SamplingParams
from llamadesk.services.chat import ChatController
from model_metrics import STORY
from store_metrics import build_conversations


class CpuHeartbeat(Heartbeat):
    """The stall row's heartbeat at 5 ms, also reading the GUI thread's CPU: per tick
    ``gaps`` holds (wall at end, wall ms, CPU ms)."""

    def __init__(self) -> None:
        super().__init__(5)
        self.gaps: list[tuple[float, float, float]] = []  # type: ignore[assignment]
        self._cpu = 0.0

    def start(self) -> None:
        self._cpu = time.thread_time()
        super().start()

    @Slot()
    def _tick(self) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append((wall, (wall - self._last) * 1000, (cpu - self._cpu) * 1000))
        self._last, self._cpu = wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--blocks", action="store_true")
    parser.add_argument("--unprepared", action="store_true",
                        help="do not prepare the chat's first send (ChatController.prepare_send)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gui-profile-"))
    bench_keychain.install(work)  # the store's key, on a machine with no keychain
    db = work / "chats.sqlite3"
    (cid,) = build_conversations(db, [args.messages])
    if args.unprepared:  # as before the first send was prepared on the writer thread
        ChatController.prepare_send = lambda _self, _cid: None  # type: ignore[method-assign]
    blocks = Blocks()
    if args.blocks:
        blocks.install()  # before the window connects its slots
    h = AppHarness(work / "home", database=db, timeout_s=900)  # a loaded machine
    profiler = cProfile.Profile() if args.profile else None
    try:
        h.select(cid)
        h.set_params(cid, replace(SamplingParams(), max_tokens=args.tokens, seed=4999))
        pause = QEventLoop()  # a user reads the chat before typing
        QTimer.singleShot(1000, pause.quit)
        pause.exec()
        beat = CpuHeartbeat()
        beat.start()
        blocks.recording = args.blocks
        h.send(STORY)  # the chat's first send: only its blocks are shown
        blocks.recording = False
        beat.stop()
        if args.blocks:
            print("first send:\n" + blocks.report(
                sorted(beat.gaps, key=lambda g: g[2], reverse=True)[:3]))
        print(f"load average {os.getloadavg()}")
        for run in range(args.runs):
            h.set_params(cid, replace(SamplingParams(), max_tokens=args.tokens,
                                      seed=5000 + run))
            beat.start()
            blocks.calls.clear()
            blocks.recording = args.blocks
            if profiler is not None:
                profiler.enable()
            cpu0 = time.thread_time()
            reply = h.send("Continue the story, with more detail.")
            cpu = time.thread_time() - cpu0
            if profiler is not None:
                profiler.disable()
            beat.stop()
            blocks.recording = False
            by_cpu = sorted(beat.gaps, key=lambda g: g[2], reverse=True)
            tokens = max(reply.completion_tokens, 1)
            print(f"run {run}: {reply.completion_tokens} tokens; longest wall gap "
                  f"{max(g[1] for g in beat.gaps):.1f} ms; most GUI CPU in one gap "
                  f"{by_cpu[0][2]:.1f} ms; largest CPU gaps (wall/cpu ms) "
                  + ", ".join(f"{w:.1f}/{c:.1f}" for _e, w, c in by_cpu[:5])
                  + f"; GUI CPU send→stored {cpu * 1000:.0f} ms, "
                  f"{cpu / tokens * 1e6:.0f} µs/token")
            if args.blocks:
                print(blocks.report(by_cpu[:5]))
    finally:
        h.close()
    if profiler is not None and args.profile is not None:
        with args.profile.open("w", encoding="utf-8") as out:
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(60)
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
