"""GUI-thread metrics with the real window: stalls while streaming into a long chat,
the GUI's cost per streamed token (short vs long chat), opening a long chat and
listing many chats."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Slot
from PySide6.QtWidgets import QWidget

from common import Goal, Metric, alternate, repeat, side, summarize
from harness import AppHarness, BenchError, Reply, qapp
from llamadesk.core.conversation import SamplingParams
from model_metrics import STORY
from store_metrics import FULL as STORE_FULL
from store_metrics import QUICK as STORE_QUICK
from store_metrics import build_conversations, cached_database

HEARTBEAT_MS = 5


class Heartbeat(QObject):
    """A timer on the GUI thread; the longest gap between its ticks, beyond the
    interval, is the longest time the GUI thread could not react."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        super().__init__()
        self.interval = interval_ms / 1000
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.gaps: list[float] = []

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._tick()
        self._timer.stop()

    @Slot()
    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(max(now - self._last - self.interval, 0.0))
        self._last = now

    @property
    def worst_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000


class PaintCounter(QObject):
    """Counts the paint events ``widget`` receives."""

    def __init__(self, widget: QWidget) -> None:
        super().__init__(widget)
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def _stream(h: AppHarness, cid: int, tokens: int, seed: int) -> list[Reply]:
    """Stream at least ``tokens`` reply tokens into chat ``cid`` (asking the model to go
    on if it ends early)."""
    h.select(cid)
    h.set_params(cid, replace(SamplingParams(), max_tokens=tokens, seed=seed))
    replies: list[Reply] = []
    done = 0
    prompt = STORY
    while done < tokens:
        r = h.send(prompt)
        replies.append(r)
        done += r.completion_tokens
        prompt = "Continue the story, with more detail."
        if len(replies) > 8:
            break
    return replies


def streaming(work: Path, quick: bool, runs: int,
              settings: dict[str, Any] | None = None) -> list[Metric]:
    """Stall while streaming into a 1,000-message chat; per-token GUI cost 10 vs 1,000."""
    long_n, short_n = (12, 4) if quick else (1000, 10)
    stream_tokens = 8 if quick else 1000
    cost_tokens = 8 if quick else 300
    db = work / "gui-chats.sqlite3"
    short_id, long_id = build_conversations(db, [short_n, long_n])
    h = AppHarness(work / "home-gui", database=db, settings=settings)
    try:
        beat = Heartbeat()
        stalls: list[float] = []
        stall_streaming: list[float] = []
        streamed: list[int] = []
        seeds = iter(range(5000, 6000))

        def one_stall_run() -> float:
            h.select(long_id)
            beat.start()
            replies = _stream(h, long_id, stream_tokens, next(seeds))
            beat.stop()
            streamed.append(sum(r.completion_tokens for r in replies))
            # The worst gap while text was arriving (the send itself is in the total).
            stall_streaming.append(beat.worst_ms)
            return beat.worst_ms

        stalls = repeat(max(runs // 2, 1) if not quick else 1, 0 if quick else 1,
                        one_stall_run)

        per_batch: dict[int, list[float]] = {short_id: [], long_id: []}
        tokens_per_batch: dict[int, list[float]] = {short_id: [], long_id: []}

        def cost(cid: int) -> float:
            replies = _stream(h, cid, cost_tokens, next(seeds))
            cpu = 0.0
            n = 0
            batches = 0
            for r in replies:
                if r.gui_cpu_first is None or r.gui_cpu_last is None:
                    continue
                cpu += r.gui_cpu_last - r.gui_cpu_first
                n += r.completion_tokens - h.count_tokens(r.first_text)
                batches += max(r.batches - 1, 0)
            # Per batch too: a slower decode (a longer history) puts fewer tokens in each
            # 30 ms batch, which raises the per-token figure with the same GUI work.
            per_batch[cid].append(cpu / max(batches, 1) * 1e6)
            tokens_per_batch[cid].append(n / max(batches, 1))
            return cpu / max(n, 1) * 1e6  # µs of GUI-thread CPU per streamed token

        cost_runs = max(min(runs, 3), 1)
        long_cost, short_cost = alternate(cost_runs, 0 if quick else 1,
                                          lambda: cost(long_id), lambda: cost(short_id))
        ratios = [a / b for a, b in zip(long_cost, short_cost, strict=True)]
        return [
            Metric("gui_stall_streaming",
                   f"longest GUI stall streaming {stream_tokens} tokens into a "
                   f"{long_n}-message chat", "ms", Goal("<=", 16), stalls,
                   details={"tokens_streamed": streamed, "heartbeat_ms": HEARTBEAT_MS},
                   notes="a 5 ms QTimer heartbeat; send → reply stored, including the send "
                         "(storing the message, reading the branch for the prompt)"),
            Metric("gui_cost_per_token_ratio",
                   f"GUI-thread CPU per streamed token, {long_n} ÷ {short_n} earlier "
                   "messages", "×", Goal("<=", 1.2), ratios,
                   numerator=side(f"{long_n} earlier messages", "µs/token", long_cost),
                   reference=side(f"{short_n} earlier messages", "µs/token", short_cost),
                   details={"gui_cpu_per_batch_us": {f"{long_n}": per_batch[long_id],
                                                     f"{short_n}": per_batch[short_id]},
                            "tokens_per_batch": {f"{long_n}": tokens_per_batch[long_id],
                                                 f"{short_n}": tokens_per_batch[short_id]}},
                   notes="GUI thread CPU time (thread_time) between the first and the last "
                         "text of a reply, per token streamed in between; includes painting"),
        ]
    finally:
        h.close()


def open_and_list(work: Path, quick: bool, runs: int,
                  settings: dict[str, Any] | None = None) -> list[Metric]:
    """Open a long chat and list the chats, through the window."""
    from llamadesk.ui.conversation_list import ConversationListModel

    sizes = STORE_QUICK if quick else STORE_FULL
    db, long_id = cached_database(sizes)
    h = AppHarness(work / "home-gui-open", database=db, settings=settings)
    app = qapp()
    try:
        short_id = long_id + 1

        def settle() -> None:
            # Let queued layout and update events run, then paint now.
            app.processEvents()
            app.processEvents()
            h.window.repaint()

        def open_long() -> float:
            h.select(short_id)
            settle()
            started = time.perf_counter()
            h.select(long_id)
            settle()
            return (time.perf_counter() - started) * 1000

        opened = repeat(runs, 1, open_long)
        shown = h.window.chat.messages.rowCount()

        view = h.window.sidebar.list_view
        painted = PaintCounter(view.viewport())

        def list_first_page() -> float:
            settle()
            painted.count = 0
            started = time.perf_counter()
            model = ConversationListModel(h.store)
            view.setModel(model)
            # Until the list has painted its new rows: what the user sees change. (A
            # repaint of the whole window, as the open row does, would add the chat
            # pane's paint, which showing the list does not change.)
            while not painted.count:
                app.processEvents()
                if time.perf_counter() - started > 5:
                    raise BenchError("the chat list was not painted")
            elapsed = (time.perf_counter() - started) * 1000
            view.setModel(h.window.sidebar.conversations)
            return elapsed

        listed = repeat(runs, 1, list_first_page)

        def list_all() -> float:
            started = time.perf_counter()
            model = ConversationListModel(h.store)
            while model.canFetchMore(model.index(-1)):
                model.fetchMore(model.index(-1))
            return (time.perf_counter() - started) * 1000

        everything = repeat(max(runs // 2, 1), 0, list_all)
        details: dict[str, Any] = {"rows_shown_after_open": shown,
                                   "all_pages_fetched_ms": summarize(everything)}
        return [
            Metric("gui_open_conversation",
                   f"open a {sizes.long_conversation}-message chat in the window", "ms",
                   Goal("<=", 50), opened, details=details,
                   notes="sidebar selection → messages read, model set, laid out, painted"),
            Metric("gui_list_conversations",
                   f"show the chat list of {sizes.conversations} chats", "ms",
                   Goal("<=", 10), listed,
                   details={"all_pages_fetched_ms": summarize(everything)},
                   notes="a fresh ConversationListModel (first page, count) in the sidebar, "
                         "until the list has painted it (not the rest of the window); "
                         "fetching every page is reported beside it"),
        ]
    finally:
        h.close()


def run(work: Path, quick: bool, runs: int,
        settings: dict[str, Any] | None = None) -> list[Metric]:
    """Every GUI metric."""
    return [*open_and_list(work, quick, runs, settings),
            *streaming(work, quick, runs, settings)]
