"""500 messages in a row through the chat send path (``ChatController.send`` with the real
inference service and the bundled model): every request ends with exactly one final
signal, nothing stays "generating", and resident memory stays within a stated bound.

The messages are sent by a process of their own (tests/support/load_messages.py), which
starts in the background when collection ends while this test runs last
(tests/support/background_runs.py): it is the suite's longest run after the benchmark's
and needs nothing from the other tests. The measured numbers are written to the test's
output (``-s``) and recorded in docs/performance.md; the bound is on growth after a
warm-up, as the first messages load the model and fill caches once. The engine keeps
the KV state of recent chats in RAM up to a cap (256 MiB by default), which a run over
many chats fills by design; there the cap is 16 MiB, so what the bound catches is memory
that nothing caps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from background_runs import BackgroundRun

#: Resident memory may grow this much from the warm-up to the last message.
RSS_GROWTH_BOUND = 64 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.timeout(900)  # run alone on a busy machine, it is all waiting for the process
def test_500_messages_each_end_with_exactly_one_final_signal(
        background_run: BackgroundRun, bundled_model_path: Path) -> None:
    status, stdout, stderr = background_run.wait(timeout=880)
    assert status == 0, stdout[-3000:] + stderr[-3000:]
    report = json.loads(stdout.splitlines()[-1])
    messages = report["messages"]

    assert report["problems"] == []  # each: sent, exactly one reply_finished, not busy
    assert report["finals"] == messages and report["kinds"] == ["finished"]
    assert report["ready"], "the model is still loaded and ready"
    assert report["user"] == messages and report["assistant"] == messages
    assert report["qt_warnings"] == []
    growth = report["rss_end"] - report["rss_warm"]
    print(f"\n{messages} messages in {report['elapsed_s']:.1f} s "
          f"({report['elapsed_s'] / messages * 1000:.0f} ms each); "
          f"RSS after {report['warm_up']}: {report['rss_warm'] / 2**20:.1f} MiB, at the end: "
          f"{report['rss_end'] / 2**20:.1f} MiB, growth {growth / 2**20:.1f} MiB "
          f"(bound {RSS_GROWTH_BOUND / 2**20:.0f} MiB)")
    assert report["rss_warm"] > 0 and growth < RSS_GROWTH_BOUND
