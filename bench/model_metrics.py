"""Metrics through the whole app path with the bundled model: decode and prompt speed
against the reference, time to first token deep in a chat and after switching chats,
and how fast Stop stops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from common import Goal, Metric, alternate, repeat, side, summarize, warmups
from harness import AppHarness, BenchError, Reply, wait
from llamadesk.core.conversation import SamplingParams
from llamadesk.services import llama_internals as internals
from longchat_metrics import long_chat
from model_reference import FILLER, STORY, Reference


@dataclass(frozen=True)
class Sizes:
    """How much work each model metric does."""

    tg: int  # decode tokens (llama-bench tg)
    pp: int  # prompt tokens (llama-bench pp)
    turns: int  # turns in the deep-chat TTFT metric
    turn_reply_tokens: int
    stop_prompt: int  # prompt tokens for stop-during-prompt


FULL = Sizes(tg=128, pp=512, turns=12, turn_reply_tokens=60, stop_prompt=2000)
QUICK = Sizes(tg=12, pp=48, turns=3, turn_reply_tokens=8, stop_prompt=120)



def _params(**changes: Any) -> SamplingParams:
    return replace(SamplingParams(), **changes)


def _text_of_tokens(h: AppHarness, n: int, salt: str) -> str:
    """A user message of about ``n`` tokens."""
    text = f"{salt}. "
    while h.count_tokens(text) < n:
        text += FILLER
    words = text.split()
    while len(words) > 4 and h.count_tokens(" ".join(words)) > n:
        words = words[:-max((h.count_tokens(" ".join(words)) - n) // 2, 1)]
    return " ".join(words)


# -- decode ---------------------------------------------------------------------------
def _app_decode(h: AppHarness, tg: int, seed: int) -> tuple[float, dict[str, Any]]:
    """One long reply; decode tokens/s as the GUI thread saw it."""
    h.new_conversation(_params(max_tokens=tg + 8, seed=seed))
    threads = h.engine.decode_threads  # the engine is idle between replies
    if threads is not None:
        threads.tokens.clear()
    r = h.send(STORY)
    if r.t_first is None or r.t_last is None or r.t_last <= r.t_first:
        raise BenchError("the reply was too short to time")
    n = r.completion_tokens
    # Tokens already in the first batch were not timed; count them.
    before = h.count_tokens(r.first_text)
    perf = h.perf()
    span = r.t_last - r.t_first
    rate = (n - before) / span
    engine_rate = r.message.stats.tokens_per_s if r.message else None
    llama_rate = perf["n_eval"] / (perf["t_eval_ms"] / 1000) if perf["t_eval_ms"] else None
    # The GUI thread's CPU while the reply streamed: on a machine with as many cores as
    # llama.cpp threads, each of its milliseconds stalls the decode about as long.
    gui_s = (r.gui_cpu_last or 0.0) - (r.gui_cpu_first or 0.0)
    # The context's cells: llama-bench's tg128 decodes in 256 (its n_ctx padded); a larger
    # one is slower at the same depth without flash attention (docs/performance.md).
    cells = internals.context_size(h.engine._llm)
    return rate, {"tokens": n, "engine_tps": engine_rate, "llama_decode_tps": llama_rate,
                  "context_cells": cells,
                  "prompt_tokens": r.message.stats.prompt_tokens if r.message else None,
                  "gui_cpu_ms_per_s": gui_s * 1000 / span,
                  "gui_batches_per_s": (r.batches - 1) / span,
                  "decode_threads": dict(threads.tokens) if threads is not None else None}


def decode(h: AppHarness, ref: Reference, sizes: Sizes, runs: int,
           diagnose: bool) -> list[Metric]:
    """App decode tokens/s ÷ reference tg (the issue's row, at depth 0), and the same
    replies ÷ reference tg at the app's own depth (its prompt before the reply)."""
    seeds = iter(range(1000, 2000))
    diag: list[dict[str, Any]] = []
    deep_s: list[float] = []

    def app() -> float:
        rate, d = _app_decode(h, sizes.tg, next(seeds))
        diag.append(d)
        return rate

    def reference() -> float:
        # Both references in each turn (the order flipping), so that each app reply has
        # its own pair; the depth is the warm-up reply's prompt (the same every reply).
        depth = int(diag[0]["prompt_tokens"] or 0)
        if len(deep_s) % 2:
            flat = ref.bench(tg=sizes.tg)
            deep_s.append(ref.bench(tg=sizes.tg, depth=depth))
        else:
            deep_s.append(ref.bench(tg=sizes.tg, depth=depth))
            flat = ref.bench(tg=sizes.tg)
        return flat

    app_s, ref_s = alternate(runs, 1, app, reference)
    deep_s = deep_s[-runs:]
    ratios = [a / b for a, b in zip(app_s, ref_s, strict=True)]
    kept = diag[-runs:]
    depth = int(kept[0]["prompt_tokens"] or 0) if kept else 0
    details: dict[str, Any] = {
        "tokens_per_reply": [d["tokens"] for d in kept],
        "prompt_tokens": kept[0]["prompt_tokens"] if kept else None,
        # Where the time goes, from the inside out: llama.cpp's decode alone, the
        # engine's loop (sampling, detokenizing, Python), and what the GUI received.
        "llama_cpp_decode_tps": summarize([d["llama_decode_tps"] for d in kept
                                           if d["llama_decode_tps"]]),
        "engine_loop_tps": summarize([d["engine_tps"] for d in kept if d["engine_tps"]]),
        # What the GUI took while the text streamed (CPU ms per second, batches a second).
        "gui_cpu_ms_per_s": summarize([d["gui_cpu_ms_per_s"] for d in kept]),
        "gui_batches_per_s": summarize([d["gui_batches_per_s"] for d in kept]),
        # Tokens decoded at each thread count (fewer than the reference's on a busy
        # machine: services/decode_threads.py).
        "decode_threads_tokens": [d["decode_threads"] for d in kept],
        "context_cells": [d["context_cells"] for d in kept],
        "llama_bench_tg_at_app_depth_tps": summarize(deep_s),
        "app_depth": depth,
    }
    if diagnose and ref.llama_bench is not None:
        # The same depth through llama-cpp-python's eval loop alone (no sampling).
        details["llama_cpp_python_eval_tg_at_app_depth_tps"] = summarize(
            [ref.python(tg=sizes.tg, depth=depth) for _ in range(max(runs // 2, 2))])
    fewer = _fewer_threads_note(kept, ref.threads)
    app_side = side("app: GUI-received decode rate", "tokens/s", app_s)
    notes = ("(reply tokens after the first batch) ÷ (last − first text in the message "
             "model); sampling at the app's defaults (temperature 0.7, top-k/p, min-p)")
    return [
        Metric("decode_ratio", f"decode tokens/s, app ÷ {ref.kind} tg{sizes.tg}", "×",
               Goal(">=", 0.97), ratios,
               informational=bool(fewer),  # the goal is not checked then
               numerator=app_side,
               reference=side(f"{ref.kind} tg{sizes.tg}", "tokens/s", ref_s),
               details=details, notes=notes + fewer),
        # Like with like: the app decodes after its prompt; tg128 after none. Shown beside
        # the row, never instead of it (docs/performance.md, "Decode (round 5)").
        Metric("decode_ratio_at_depth",
               f"decode tokens/s, app ÷ {ref.kind} tg{sizes.tg} at the app's depth", "×",
               Goal(">=", 0.97), [a / b for a, b in zip(app_s, deep_s, strict=True)],
               informational=True, numerator=app_side,
               reference=side(f"{ref.kind} tg{sizes.tg} -d {depth}", "tokens/s", deep_s),
               details={"app_depth": depth},
               notes="information beside the row above (the issue's goal is against tg at "
                     f"depth 0): the same replies against tg{sizes.tg} after the app's "
                     f"{depth}-token prompt, each taken in the same turn" + fewer),
    ]


def _fewer_threads_note(kept: list[dict[str, Any]], threads: int) -> str:
    """Says so when a busy machine had the app decode with fewer threads than the
    reference ran with: then the ratio is not like with like."""
    counts = [d["decode_threads"] or {} for d in kept]
    fewer = sum(n for c in counts for t, n in c.items() if t < threads)
    total = sum(n for c in counts for n in c.values())
    if not fewer:
        return ""
    return (f"; NOT LIKE WITH LIKE: the machine was busy and the app decoded {fewer} of "
            f"{total} tokens with fewer than the reference's {threads} threads")


# -- prompt ---------------------------------------------------------------------------
def prompt(h: AppHarness, ref: Reference, sizes: Sizes, runs: int) -> Metric:
    """App prompt tokens/s (send → first text) ÷ reference pp."""
    counter = iter(range(10_000))
    llama_rates: list[float] = []

    def app() -> float:
        salt = f"Note {next(counter)}"
        # A different system prompt each run: nothing of it is in the KV cache.
        cid = h.new_conversation(_params(max_tokens=1, seed=1), system_prompt=salt)
        overhead = h.count_tokens(f"<|im_start|>system\n{salt}<|im_end|>\n<|im_start|>user\n"
                                  "<|im_end|>\n<|im_start|>assistant\n")
        text = _text_of_tokens(h, sizes.pp - overhead, salt)
        r = h.send(text)
        perf = h.perf()
        del cid
        done = r.t_first if r.t_first is not None else r.t_end
        assert done is not None
        llama_rates.append(perf["n_p_eval"] / (perf["t_p_eval_ms"] / 1000))
        return perf["n_p_eval"] / (done - r.t_send)

    app_s, ref_s = alternate(runs, 1, app, lambda: ref.bench(pp=sizes.pp))
    ratios = [a / b for a, b in zip(app_s, ref_s, strict=True)]
    return Metric(
        "prompt_ratio", f"prompt tokens/s, app ÷ {ref.kind} pp{sizes.pp}", "×",
        Goal(">=", 0.95), ratios,
        numerator=side("app: prompt tokens ÷ (send → first text)", "tokens/s", app_s),
        reference=side(f"{ref.kind} pp{sizes.pp}", "tokens/s", ref_s),
        details={"llama_cpp_prompt_tps": summarize(llama_rates[-runs:])},
        notes="a fresh chat with a one-off system prompt (no KV reuse); the app side "
              "includes storing the message, rendering the template, tokenizing and "
              "sampling the first token")


# -- time to first token ----------------------------------------------------------------
def _turn_text(i: int) -> str:
    return (f"Question {i}: tell me something new about rivers, mountains and the "
            f"villages near them, and about the people who live there in winter.")


@dataclass
class _ChatRun:
    """One deep chat: per turn, TTFT and what llama.cpp had to read (N new tokens at a
    depth of D tokens already in the context)."""

    ttft_ms: list[float]
    new_tokens: list[int]
    depth: list[int]


def _deep_chat(h: AppHarness, sizes: Sizes, seed: int) -> _ChatRun:
    h.new_conversation(_params(max_tokens=sizes.turn_reply_tokens, seed=seed))
    run = _ChatRun([], [], [])
    for turn in range(1, sizes.turns + 1):
        reply = h.send(_turn_text(turn))
        evaluated = int(h.perf()["n_p_eval"])
        prompt_tokens = (reply.message.stats.prompt_tokens or 0) if reply.message else 0
        run.ttft_ms.append(reply.ttft_s * 1000)
        run.new_tokens.append(max(evaluated, 1))
        run.depth.append(max(prompt_tokens - evaluated, 0))
    return run


def ttft_history(h: AppHarness, ref: Reference, sizes: Sizes, runs: int) -> list[Metric]:
    """TTFT at turns 2 and 12 of one chat against llama.cpp reading the same new tokens
    at the same depth (``llama-bench -p N -d DEPTH``); turn 12 ÷ turn 2 as information."""
    last = sizes.turns - 1
    picks = {"turn2": 1, "last_turn": last}
    chats: list[_ChatRun] = []
    refs: dict[str, list[float]] = {k: [] for k in picks}

    def reference(chat: _ChatRun) -> dict[str, float]:
        out = {}
        for key, i in picks.items():
            n, depth = chat.new_tokens[i], chat.depth[i]
            out[key] = n / ref.bench(pp=n, depth=depth) * 1000
        return out

    skip = warmups(1)
    seeds = iter(range(7, 1000))
    for run in range(runs + skip):  # the first conversation is the warm-up
        # Alternating, the order flipping each round; the reference reads what the app's
        # chat read (the previous run's sizes when it goes first: the same to a token or so).
        if run % 2 == 0 or not chats:
            chat = _deep_chat(h, sizes, next(seeds))
            measured = reference(chat)
        else:
            measured = reference(chats[-1])
            chat = _deep_chat(h, sizes, next(seeds))
        chats.append(chat)
        if run >= skip:
            for key in picks:
                refs[key].append(measured[key])
    kept = chats[skip:]
    metrics = []
    for key, i in picks.items():
        app = [c.ttft_ms[i] for c in kept]
        metrics.append(Metric(
            f"ttft_{key}_vs_llama", f"TTFT turn {i + 1}, app ÷ {ref.kind} at the same depth",
            "×", Goal("<=", 1.1), [a / r for a, r in zip(app, refs[key], strict=True)],
            numerator=side(f"app TTFT at turn {i + 1}", "ms", app),
            reference=side(f"{ref.kind} -p N -d DEPTH", "ms", refs[key]),
            details={"new_tokens": [c.new_tokens[i] for c in kept],
                     "depth": [c.depth[i] for c in kept]},
            notes="send → first text in the message model, against llama.cpp's time to "
                  "read the tokens the app read (N, llama.cpp's n_p_eval) on top of the "
                  "DEPTH tokens the context already held"))
    metrics.append(Metric(
        "ttft_deep_ratio", f"TTFT turn {sizes.turns} ÷ turn 2", "×", Goal("<=", 1.3),
        [c.ttft_ms[last] / c.ttft_ms[1] for c in kept],
        numerator=side(f"TTFT at turn {sizes.turns}", "ms", [c.ttft_ms[last] for c in kept]),
        reference=side("TTFT at turn 2", "ms", [c.ttft_ms[1] for c in kept]),
        details={"prompt_tokens_at_last_turn": [c.depth[last] + c.new_tokens[last]
                                                for c in kept],
                 "ttft_ms_per_turn_median": [summarize([c.ttft_ms[i] for c in kept])["median"]
                                             for i in range(sizes.turns)]},
        informational=True,
        notes="information only: it mixes the app's overhead with attention over a longer "
              "history, which llama.cpp pays too (the two rows above separate them)"))
    return metrics


def ttft_switch(h: AppHarness, sizes: Sizes, runs: int) -> Metric:
    """TTFT after switching to another chat (and generating there) and back ÷
    continuing the same chat."""
    p = _params(max_tokens=sizes.turn_reply_tokens, seed=11)
    a = h.new_conversation(p)
    for turn in range(1, max(sizes.turns // 2, 1) + 1):
        h.send(_turn_text(turn))
    b = h.new_conversation(p)
    h.send(_turn_text(100))
    h.select(a)
    counter = iter(range(200, 10_000))

    def cont() -> float:
        h.select(a)
        return h.send(_turn_text(next(counter))).ttft_s * 1000

    def switched() -> float:
        h.select(b)
        h.send(_turn_text(next(counter)))
        h.select(a)
        return h.send(_turn_text(next(counter))).ttft_s * 1000

    # cont() right after switched() continues a; switched() always leaves a and returns.
    sw, co = [], []
    for _ in range(warmups(1)):
        cont()
        switched()
    for _ in range(runs):
        co.append(cont())
        sw.append(switched())
    ratios = [s / c for s, c in zip(sw, co, strict=True)]
    return Metric(
        "ttft_switch_ratio", "TTFT after switching chats and back ÷ continuing", "×",
        Goal("<=", 1.5), ratios,
        numerator=side("TTFT after switch-away-and-back", "ms", sw),
        reference=side("TTFT continuing the same chat", "ms", co),
        details={"kv_cache_bytes": h.engine.kv_cache.size_bytes},
        notes="the other chat generates in between, so the context holds its tokens; "
              "the app restores the first chat's saved KV state")


# -- stop ---------------------------------------------------------------------------------
def stop_latency(h: AppHarness, sizes: Sizes, runs: int) -> list[Metric]:
    """Stop → generation_ended (stopped), mid-generation and mid-prompt."""
    seeds = iter(range(3000, 4000))

    def mid_generation() -> float:
        h.new_conversation(_params(max_tokens=2000, seed=next(seeds)))

        def maybe_stop(r: Reply) -> None:
            if r.batches == 5 and "t_stop" not in r.extra:
                r.extra["t_stop"] = __import__("time").perf_counter()
                h.window.stop()

        r = h.send(STORY, on_text=maybe_stop)
        if "t_stop" not in r.extra or r.t_cancelled is None:
            raise BenchError("the reply ended before it could be stopped")
        return (r.t_cancelled - r.extra["t_stop"]) * 1000

    counter = iter(range(10_000))
    prompt_s: list[float] = []

    def long_prompt(stop_after_s: float | None) -> tuple[Reply, float]:
        salt = f"Memo {next(counter)}"
        h.new_conversation(_params(max_tokens=1, seed=1), system_prompt=salt)
        text = _text_of_tokens(h, sizes.stop_prompt, salt)
        t_stop: list[float] = []

        def arm(_r: Reply) -> None:
            if stop_after_s is not None:
                import time

                def fire() -> None:
                    t_stop.append(time.perf_counter())
                    h.window.stop()

                from PySide6.QtCore import QTimer

                QTimer.singleShot(int(stop_after_s * 1000), fire)

        r = h.send(text, before=arm)
        return r, (t_stop[0] if t_stop else 0.0)

    def mid_prompt() -> float:
        # Time one whole prompt first, then stop the next one half-way through it. The
        # very first prompt also loads the model at this context size: not a prompt time.
        if not prompt_s:
            long_prompt(None)
        full, _ = long_prompt(None)
        assert full.t_end is not None
        prompt_s.append(full.t_end - full.t_send)
        r, t_stop = long_prompt(prompt_s[-1] / 2)
        if r.t_cancelled is None:
            raise BenchError("the prompt finished before Stop was pressed")
        if r.t_first is not None:
            r.extra["reached_first_token"] = True
        return (r.t_cancelled - t_stop) * 1000

    gen = repeat(runs, 1, mid_generation)
    wait(50)
    prm = repeat(runs, 1, mid_prompt)
    return [
        Metric("stop_latency_generation", "Stop → cancelled, mid-generation", "ms",
               Goal("<=", 200), gen, notes="Stop pressed after the 5th text batch"),
        Metric("stop_latency_prompt",
               f"Stop → cancelled, half-way through a {sizes.stop_prompt}-token prompt",
               "ms", Goal("<=", 200), prm,
               details={"full_prompt_s": summarize(prompt_s)},
               notes="llama.cpp's abort callback ends the prompt's batch early"),
    ]


def run_all(h: AppHarness, ref: Reference, quick: bool, runs: int,
            only: Callable[[str], bool]) -> list[Metric]:
    """The model metrics that ``only`` selects."""
    sizes = QUICK if quick else FULL
    out: list[Metric] = []
    if only("decode"):
        out.extend(decode(h, ref, sizes, runs, diagnose=not quick))
    if only("prompt"):
        out.append(prompt(h, ref, sizes, runs))
    if only("ttft"):
        out.extend(ttft_history(h, ref, sizes, max(runs // 2, 1) if not quick else 1))
        out.append(ttft_switch(h, sizes, runs))
    if only("longchat"):
        out.extend(long_chat(h, ref, quick, runs))
    if only("stop"):
        out.extend(stop_latency(h, sizes, runs))
    return out
