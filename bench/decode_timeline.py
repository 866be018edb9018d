"""Where a reply's decode time goes in the window, token by token: every ``llama_decode``
and ``llama_sampler_sample`` call on the inference thread is timed (wall clock in and out,
and that thread's own CPU), so each token splits into llama.cpp's decode and the gap
before the next one (sampling, the token loop's Python, and waiting: for the GIL or for
a core), beside the GUI thread's CPU per text batch and the process's sleeps per token
(``common.sleeps``). Variants take turns in one process
with the decode row's prompt and settings:

* ``app``: the window as it ships (text batches every ``jobs.BATCH_INTERVAL_S``);
* ``interval N``: batches every N ms instead (``--intervals 100 1000000``: one batch);
* ``switch N``: the interpreter's switch interval at N ms while the reply decodes
  (``--switch 1``; Python's default is 5);
* ``llama-bench``, ``llama-bench -d D``: the decode row's references, tg at depth 0 and
  at the app's depth (``--llama-bench``).

    QT_QPA_PLATFORM=offscreen python bench/decode_timeline.py [--runs 3] [--tokens 128]
        [--intervals MS ...] [--switch MS ...] [--llama-bench] [--blocks]

Rates are (tokens − 1) ÷ (last decode's end − first one-token decode's start): the
decode alone, without the prompt, measured inside the process, not through the GUI.
``--blocks`` adds the GUI thread's CPU per text batch in each method of the streaming
path (``gui_blocks.py``), for the shipped variant.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import llama_cpp.llama_cpp as lib

import bench_keychain
from common import sleeps
from gui_blocks import Blocks
from harness import AppHarness
from llamadesk.core.conversation import SamplingParams
from llamadesk.services import jobs
from model_reference import STORY, Reference

Call = tuple[float, float, float, float]  # wall in, wall out, CPU in, CPU out


@dataclass
class Timeline:
    """The inference thread's calls into llama.cpp during one reply."""

    gui: int = field(default_factory=threading.get_ident)
    recording: bool = False
    decodes: list[Call] = field(default_factory=list)
    samples: list[Call] = field(default_factory=list)

    def install(self) -> None:
        """Wrap the two C calls where llama-cpp-python looks them up (at call time)."""
        lib.llama_decode = self._timed(lib.llama_decode, self.decodes)  # type: ignore[assignment]
        lib.llama_sampler_sample = self._timed(  # type: ignore[assignment]
            lib.llama_sampler_sample, self.samples)

    def _timed(self, fn: Callable[..., Any], into: list[Call]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            if not self.recording or threading.get_ident() == self.gui:
                return fn(*args)
            w, c = time.perf_counter(), time.thread_time()
            out = fn(*args)
            into.append((w, time.perf_counter(), c, time.thread_time()))
            return out
        return timed

    def clear(self) -> None:
        self.decodes.clear()
        self.samples.clear()


#: What runs on the GUI thread for each text batch of a streaming reply.
STREAMING = (
    "llamadesk.services.chat:ChatController._on_text",
    "llamadesk.ui.chat_pane:ChatPane._on_reply_text",
    "llamadesk.ui.message_model:MessageListModel.append_reply_text",
    "llamadesk.ui.message_view:MessageView.dataChanged",
    "llamadesk.ui.message_view:MessageView.paintEvent",
    "llamadesk.ui.message_view:MessageDelegate.paint",
    "llamadesk.ui.message_view:MessageDelegate.sizeHint",
    "llamadesk.ui.message_view:MessageDelegate.document",
)


def per_method(blocks: Blocks) -> dict[str, float]:
    """CPU seconds per method, nested calls counted in their callers too."""
    out: dict[str, float] = {}
    for name, _start, _end, cpu in blocks.calls:
        out[name] = out.get(name, 0.0) + cpu
    return out


def _ms(values: list[float]) -> float:
    return statistics.mean(values) * 1000 if values else float("nan")


def split(t: Timeline) -> dict[str, float]:
    """Per one-token decode (the prompt's decode left out): means in ms."""
    d = t.decodes[1:]  # the first decode read the prompt
    if len(d) < 3:
        return {}
    gaps = [(b[0] - a[1], b[2] - a[3]) for a, b in itertools.pairwise(d)]
    s = t.samples[1:]
    return {
        "tokens_per_s": (len(d) - 1) / (d[-1][1] - d[0][0]),
        "decode_wall_ms": _ms([x[1] - x[0] for x in d]),
        "decode_cpu_ms": _ms([x[3] - x[2] for x in d]),
        "gap_wall_ms": _ms([g[0] for g in gaps]),
        "gap_cpu_ms": _ms([g[1] for g in gaps]),
        "gap_waiting_ms": _ms([max(g[0] - g[1], 0.0) for g in gaps]),
        "gap_max_ms": max(g[0] for g in gaps) * 1000,
        "sample_wall_ms": _ms([x[1] - x[0] for x in s]),
        "sample_cpu_ms": _ms([x[3] - x[2] for x in s]),
        "tokens": float(len(d) + 1),
    }


def _one_reply(h: AppHarness, timeline: Timeline, tokens: int,
               seed: int) -> tuple[dict[str, float], int, int]:
    """Send the row's prompt in a new chat; the reply's split, its prompt's tokens and
    the text batches the GUI received."""
    h.new_conversation(replace(SamplingParams(), max_tokens=tokens + 8, seed=seed))
    timeline.clear()
    timeline.recording = True
    slept = sleeps()
    try:
        reply = h.send(STORY)
    finally:
        timeline.recording = False
    slept = sleeps() - slept
    depth = (reply.message.stats.prompt_tokens or 0) if reply.message else 0
    span = (reply.t_last or 0) - (reply.t_first or 0)
    row = split(timeline)
    if row:  # the process's, GUI included: hundreds a token when libgomp stopped spinning
        row["sleeps_per_token"] = slept / row["tokens"]
    gui_ms = ((reply.gui_cpu_last or 0) - (reply.gui_cpu_first or 0)) * 1000
    row["gui_cpu_ms_per_s"] = gui_ms / span if span > 0 else float("nan")
    row["gui_batches_per_s"] = (reply.batches - 1) / span if span > 0 else 0.0
    row["gui_cpu_ms_per_batch"] = gui_ms / max(reply.batches - 1, 1)
    threads = h.engine.decode_threads
    if threads is not None:
        row["one_thread_tokens"] = float(threads.tokens.get(1, 0))
        threads.tokens.clear()
    return row, depth, reply.batches


def _report(results: dict[str, list[dict[str, float]]], blocks: Blocks,
            batches: int) -> None:
    for name, all_rows in results.items():
        rows = [r for r in all_rows if r]  # a reply too short to split has no row
        print(f"{name} (median of {len(rows)}):")
        if not rows:
            continue
        keys = [k for k in rows[0] if all(k in r for r in rows)]
        print("  " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.3f}"
                               for k in keys))
        print("  tokens/s per run: " + ", ".join(f"{r['tokens_per_s']:.1f}" for r in rows))
    if batches:
        print(f"GUI thread per text batch ({batches} batches), CPU µs:")
        for method, cpu in sorted(per_method(blocks).items(), key=lambda kv: -kv[1]):
            print(f"  {method:42s} {cpu * 1e6 / batches:8.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--intervals", type=float, nargs="*", default=[],
                    help="other batch intervals (ms) to take turns with the app's")
    ap.add_argument("--switch", type=float, nargs="*", default=[],
                    help="switch intervals (ms) to take turns with the default's")
    ap.add_argument("--llama-bench", action="store_true")
    ap.add_argument("--blocks", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="decode-timeline-"))
    bench_keychain.install(work)
    timeline = Timeline()
    timeline.install()
    blocks = Blocks()
    if args.blocks:
        blocks.install(STREAMING)  # before the window connects its slots
    h = AppHarness(work / "home")
    ref = None
    if args.llama_bench:
        from reference import binary_path

        ref = Reference.for_model(h.inference.model_info, binary_path())
    shipped, switch = jobs.BATCH_INTERVAL_S, sys.getswitchinterval()
    variants: list[tuple[str, float, float]] = [
        ("app", shipped, switch),
        *((f"interval {ms:g} ms", ms / 1000, switch) for ms in args.intervals),
        *((f"switch {ms:g} ms", shipped, ms / 1000) for ms in args.switch)]
    results: dict[str, list[dict[str, float]]] = {}
    seeds = iter(range(1000, 2000))
    batches = depth = 0
    print(f"load average {os.getloadavg()}", flush=True)
    try:
        for run in range(args.runs + 1):  # the first round warms up
            for name, interval, switch_s in variants:
                jobs.BATCH_INTERVAL_S = interval
                sys.setswitchinterval(switch_s)
                blocks.recording = args.blocks and name == "app" and run > 0
                row, depth, sent = _one_reply(h, timeline, args.tokens, next(seeds))
                sys.setswitchinterval(switch)
                batches += sent if blocks.recording else 0
                blocks.recording = False
                if run:
                    results.setdefault(name, []).append(row)
            if ref is not None:
                for name, d in (("llama-bench", 0), (f"llama-bench -d {depth}", depth)):
                    rate = ref.bench(tg=args.tokens, depth=d)
                    if run:
                        results.setdefault(name, []).append(
                            {"tokens_per_s": rate, "decode_wall_ms": 1000 / rate})
    finally:
        jobs.BATCH_INTERVAL_S = shipped
        sys.setswitchinterval(switch)
        h.close()
    _report(results, blocks, batches)
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
