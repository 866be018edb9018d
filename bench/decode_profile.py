"""Where decode time goes between llama.cpp and the app: one process, one ``Llama``, the
same prompt, the stages measured in alternation (a shared machine's load hits all alike).

    python bench/decode_profile.py [--tokens 128] [--rounds 3] [--threads N] [--embed]
                                   [--llama-bench] [--profile] [--only STAGE ...]

Stages, from the inside out:
* ``decode``: ``llama_decode`` of one token at a time, nothing sampled (what llama-bench's
  tg measures, through llama-cpp-python's ``eval``);
* ``decode+sample``: the same, with the app's sampler chain run in C after each decode;
* ``create_completion``: llama-cpp-python's own text completion, the app's sampling;
* ``engine``: ``LlamaEngine.generate`` (stop strings, detokenizing, the text callback),
  its one-token decodes at the threads the machine's load leaves room for;
* ``engine, threads fixed``: the same at the load options' threads whatever the load;
* ``engine, after a question's embed`` (``--embed``): the same, fixed threads, with a
  ``QueryEmbedder`` that has just embedded a question still alive, as in a window after a
  document question (its thread is stopped after the stage).
Every stage also prints the process's sleeps per token (its threads' voluntary context
switches, Linux): ~0–1 while llama.cpp's OpenMP threads spin at their barriers, hundreds
when libgomp has stopped spinning (more OpenMP threads than cores: "Decode (round 7)").
Each prints the CPU time per token of the calling thread (``time.thread_time``) and
tokens/s, medians of the rounds. With ``--threads 1`` (the default) llama.cpp decodes on
the calling thread, so CPU per token is the whole cost and barely moves with the
machine's load, which wall-clock rates do; the differences between stages are what
each layer adds. ``--llama-bench`` adds llama-bench's tg (the built reference, the
app's cache types) as a fifth stage in the same turns: with ``--threads 2`` that is the
headless engine against the decode row's reference, wall-clock, no window.
``--profile`` adds cProfile's top entries of one engine reply; ``--parts`` instead times
each piece of the token loop on its own (CPU per call).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))
sys.path.insert(0, str(ROOT / "bench"))

from common import sleeps  # noqa: E402
from llamadesk.core.bundled import locate  # noqa: E402
from llamadesk.core.conversation import Message, Role, SamplingParams  # noqa: E402
from llamadesk.services import llama_internals as internals  # noqa: E402
from llamadesk.services.constraints import ReplyConstraints  # noqa: E402
from llamadesk.services.decode_threads import DecodeThreads  # noqa: E402
from llamadesk.services.engine import GenerationRequest, LlamaEngine  # noqa: E402

#: Tokens the adaptive engine stage decoded at each thread count.
THREADS_USED: dict[int, int] = {}

PROMPT = ("<|im_start|>user\nTell me a long story about a lighthouse keeper and the sea, "
          "with many details.<|im_end|>\n<|im_start|>assistant\n")


def _params(tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=tokens, seed=7)


def _stage_decode(engine: LlamaEngine, prompt: list[int], tokens: int,
                  sample: bool) -> tuple[float, float]:
    llm = engine._llm
    assert llm is not None
    p = _params(tokens)
    llm.reset()
    llm._ctx.kv_cache_clear()
    llm.eval(prompt)
    sampler = llm._init_sampler(top_k=p.top_k, top_p=p.top_p, min_p=p.min_p,
                                temp=p.temperature, repeat_penalty=p.repeat_penalty)
    token = prompt[-1]
    started, cpu = time.perf_counter(), time.thread_time()
    for _ in range(tokens):
        if sample:
            token = sampler.sample(llm._ctx, -1)
        llm.eval([token])
    return tokens / (time.perf_counter() - started), (time.thread_time() - cpu) / tokens


def _stage_completion(engine: LlamaEngine, tokens: int) -> tuple[float, float]:
    llm = engine._llm
    assert llm is not None
    p = _params(tokens)
    llm.reset()
    llm._ctx.kv_cache_clear()
    first: float | None = None
    cpu = 0.0
    n = 0
    for _chunk in llm.create_completion(PROMPT, max_tokens=tokens, stream=True,
                                        temperature=p.temperature, top_k=p.top_k,
                                        top_p=p.top_p, min_p=p.min_p,
                                        repeat_penalty=p.repeat_penalty, seed=7,
                                        stop=["<|im_end|>"]):
        n += 1
        if first is None:
            first, cpu = time.perf_counter(), time.thread_time()
    assert first is not None
    return (n - 1) / (time.perf_counter() - first), (time.thread_time() - cpu) / (n - 1)


def _stage_engine(engine: LlamaEngine, tokens: int,
                  adaptive: bool = True) -> tuple[float, float]:
    llm = engine._llm
    assert llm is not None
    threads = engine.decode_threads
    assert threads is not None
    threads.tokens.clear()
    engine.decode_threads = (threads if adaptive else
                             DecodeThreads(threads.wanted, adaptive=False))
    llm.reset()
    llm._ctx.kv_cache_clear()
    engine.context.clear()
    request = GenerationRequest(
        history=(Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                         content="unused", created_at=0.0),), params=_params(tokens),
        constraints=ReplyConstraints(raw_prompt=PROMPT, stop=()))
    marks: list[float] = []

    def on_text(_text: str) -> None:
        if not marks:
            marks.append(time.thread_time())

    try:
        result = engine.generate(request, on_text, threading.Event())
    finally:
        used, engine.decode_threads = engine.decode_threads, threads
        # The other stages decode at the context's threads: the load options' again.
        internals.set_decode_threads(llm, threads.wanted)
    if adaptive:
        for n, count in used.tokens.items():
            THREADS_USED[n] = THREADS_USED.get(n, 0) + count
    assert result.stats.tokens_per_s is not None and marks
    n = result.stats.completion_tokens
    return result.stats.tokens_per_s, (time.thread_time() - marks[0]) / max(n - 1, 1)


def _stage_after_embed(engine: LlamaEngine, tokens: int) -> tuple[float, float]:
    """The engine at fixed threads while a question embedder's thread that has embedded
    one question is alive (the bundled model stands in for an embedding model)."""
    from llamadesk.services.query_embedder import QueryEmbedder

    model = Path(locate().path)
    embedder = QueryEmbedder(lambda _id: (model, None))
    try:
        assert embedder.embed("stand-in", "Where is the lighthouse?") is not None
        return _stage_engine(engine, tokens, adaptive=False)
    finally:
        embedder.shutdown()


def _stage_llama_bench(engine: LlamaEngine, tokens: int) -> tuple[float, float]:
    """llama-bench's tg in its own process, as the decode row runs it (no CPU figure:
    its threads are not this process's)."""
    from model_reference import Reference
    from reference import binary_path

    info = engine.info
    binary = binary_path()
    assert info is not None
    if binary is None:
        raise SystemExit("llama-bench is not built: python bench/reference.py build")
    return Reference.for_model(info, binary).bench(tg=tokens), float("nan")


def _parts(engine: LlamaEngine, prompt: list[int], tokens: int) -> None:
    """CPU per call of each piece of the token loop, on the calling thread (one llama.cpp
    thread: the decode's whole cost), each timed over ``tokens`` calls of its own."""
    import ctypes

    import llama_cpp

    from llamadesk.core.streaming import ReplyStream

    llm = engine._llm
    assert llm is not None and engine.decode_threads is not None
    p = _params(tokens)
    sampler = llm._init_sampler(top_k=p.top_k, top_p=p.top_p, min_p=p.min_p,
                                temp=p.temperature, repeat_penalty=p.repeat_penalty)
    one = (ctypes.c_int32 * 1)()

    def decode_bare(t: int) -> None:  # llama_decode alone, no llama-cpp-python
        one[0] = t
        llama_cpp.llama_decode(llm._ctx.ctx, llama_cpp.llama_batch_get_one(one, 1))

    stream = ReplyStream(("<|im_end|>",))
    pieces = {
        "llama-cpp-python eval([t])": lambda t: llm.eval([t]),
        "llama_decode alone (ctypes)": decode_bare,
        "sampler chain (C, one call)": lambda _t: sampler.sample(llm._ctx, -1),
        "detokenize": lambda t: llm.detokenize([t]),
        "stop-string scan (ReplyStream.feed)": lambda t: stream.feed(llm.detokenize([t])),
        "end-of-generation check": lambda t: internals.is_end_of_generation(llm, t),
        "decode threads (between tokens)": lambda _t: engine.decode_threads.between_tokens(
            llm, counted=False) if engine.decode_threads else None,
    }
    ids = [(i * 7919) % 40000 + 50 for i in range(tokens)]
    for name, fn in pieces.items():
        llm.reset()
        llm._ctx.kv_cache_clear()
        llm.eval(prompt)
        cpu = time.thread_time()
        for t in ids:
            fn(t)
        per = (time.thread_time() - cpu) / tokens
        print(f"  {name:38s} {per * 1e6:9.1f} µs CPU per call", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--llama-bench", action="store_true")
    ap.add_argument("--embed", action="store_true",
                    help="add the engine after a question's embed (a live embedder thread)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", nargs="+", help="these stages only (decode is always run)")
    ap.add_argument("--parts", action="store_true",
                    help="only the CPU per call of each piece of the token loop")
    args = ap.parse_args()
    engine = LlamaEngine()
    # The app's own cache and batch settings, so llama-bench runs with the same.
    from llamadesk.core.settings import AppSettings
    from llamadesk.services.resolver import bundled_spec

    engine.load(locate().path, replace(bundled_spec(AppSettings()).options,
                                       n_threads=args.threads))
    llm = engine._llm
    assert llm is not None
    prompt = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    if args.parts:
        print(f"threads {args.threads}, {args.tokens} calls each, load average "
              f"{Path('/proc/loadavg').read_text().split()[0]}")
        for _ in range(args.rounds):
            _parts(engine, prompt, args.tokens)
        engine.unload()
        return
    stages = {
        "decode": lambda: _stage_decode(engine, prompt, args.tokens, False),
        "decode+sample": lambda: _stage_decode(engine, prompt, args.tokens, True),
        "create_completion": lambda: _stage_completion(engine, args.tokens),
        "engine": lambda: _stage_engine(engine, args.tokens),
        "engine, threads fixed": lambda: _stage_engine(engine, args.tokens, adaptive=False),
    }
    if args.embed:
        stages["engine, after a question's embed"] = lambda: _stage_after_embed(
            engine, args.tokens)
    if args.llama_bench:
        stages["llama-bench tg"] = lambda: _stage_llama_bench(engine, args.tokens)
    if args.only:
        stages = {k: v for k, v in stages.items() if k == "decode" or k in args.only}
    for fn in stages.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {name: [] for name in stages}
    cpus: dict[str, list[float]] = {name: [] for name in stages}
    slept: dict[str, list[float]] = {name: [] for name in stages}
    for i in range(args.rounds):
        order = list(stages) if i % 2 == 0 else list(reversed(stages))
        for name in order:
            before = sleeps()
            rate, cpu = stages[name]()
            slept[name].append((sleeps() - before) / args.tokens)
            rates[name].append(rate)
            cpus[name].append(cpu)
    base = statistics.median(cpus["decode"])
    print(f"threads {args.threads}, {args.tokens} tokens, {args.rounds} rounds, load average "
          f"{Path('/proc/loadavg').read_text().split()[0]}")
    ref = statistics.median(rates["llama-bench tg"]) if args.llama_bench else None
    for name in stages:
        cpu = statistics.median(cpus[name])
        rate = statistics.median(rates[name])
        cpu_text = ("CPU      — (another process)" if cpu != cpu else
                    f"CPU {cpu * 1000:6.2f} ms/token ({min(cpus[name]) * 1000:.2f}–"
                    f"{max(cpus[name]) * 1000:.2f}), +{(cpu - base) * 1000:5.2f} ms over decode")
        ratio = f", {rate / ref:.3f}× llama-bench" if ref else ""
        print(f"{name:22s} {cpu_text}, {rate:6.1f} tok/s wall "
              f"({min(rates[name]):.1f}–{max(rates[name]):.1f}){ratio}, "
              f"{statistics.median(slept[name]):.0f} sleeps/token", flush=True)
    print(f"the engine decoded at each thread count (tokens): {THREADS_USED}")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        _stage_engine(engine, args.tokens)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
        print(out.getvalue())
    engine.unload()


if __name__ == "__main__":
    main()
