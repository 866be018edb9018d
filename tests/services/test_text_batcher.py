"""The batcher that paces streamed text for the GUI: the first piece at once, then at
most one batch per BATCH_INTERVAL_S, nothing lost or reordered. The clock is the
module's own ``time.monotonic``, stepped here, so no test waits or depends on load."""

from __future__ import annotations

import pytest

from llamadesk.services import jobs
from llamadesk.services.jobs import BATCH_INTERVAL_S, TextBatcher


class SteppedClock:
    """Stands in for ``time.monotonic`` inside jobs.py; moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    stepped = SteppedClock()
    monkeypatch.setattr(jobs.time, "monotonic", stepped)
    return stepped


def test_the_first_piece_goes_at_once_and_later_ones_wait_for_the_interval(
        clock: SteppedClock) -> None:
    sent: list[str] = []
    batcher = TextBatcher(sent.append)
    start = clock.now
    batcher.add("Once")
    assert sent == ["Once"]  # the first words never wait
    clock.now = start + BATCH_INTERVAL_S * 0.4
    batcher.add(" upon")
    clock.now = start + BATCH_INTERVAL_S * 0.9
    batcher.add(" a")
    assert sent == ["Once"]
    clock.now = start + BATCH_INTERVAL_S * 1.01
    batcher.add(" time")
    assert sent == ["Once", " upon a time"]


def test_flush_hands_on_what_is_held_and_nothing_twice(clock: SteppedClock) -> None:
    sent: list[str] = []
    batcher = TextBatcher(sent.append)
    batcher.add("The")
    batcher.add(" end")
    batcher.flush()
    batcher.flush()
    assert sent == ["The", " end"]


def test_a_fast_reply_makes_one_batch_per_interval_whatever_its_token_rate(
        clock: SteppedClock) -> None:
    sent: list[str] = []
    batcher = TextBatcher(sent.append)
    pieces = [f" w{i}" for i in range(200)]
    for piece in pieces:  # 200 tokens at 400 a second: half a second of reply
        batcher.add(piece)
        clock.now += 1 / 400
    batcher.flush()
    assert "".join(sent) == "".join(pieces)
    # The first piece, one batch per interval over 0.5 s, and what flush found held.
    assert len(sent) <= 2 + round(0.5 / BATCH_INTERVAL_S)
    assert len(sent) >= round(0.5 / BATCH_INTERVAL_S)
