"""A reply is decoded with as many threads as the machine's load leaves cores for (its
prompt with no more), and the thread count never changes a reply: the bundled model
through real llama.cpp."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_files import loaded_engine

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services import cpu_load, decode_threads
from llamadesk.services import llama_internals as internals
from llamadesk.services.constraints import ReplyConstraints, TokenLogprob
from llamadesk.services.decode_threads import CpuLoad, DecodeThreads, threads_for
from llamadesk.services.engine import GenerationRequest, LlamaEngine


def test_threads_follow_the_cores_other_processes_leave() -> None:
    assert threads_for(2, 2, 0.0) == 2
    assert threads_for(2, 2, 0.2) == 2  # a little background work: both cores still free
    assert threads_for(2, 2, 0.5) == 1
    assert threads_for(2, 2, 3.7) == 1  # never none
    assert threads_for(4, 8, 3.0) == 4  # room for all wanted
    assert threads_for(8, 8, 3.0) == 5
    assert threads_for(1, 2, 0.0) == 1


def _stat_line(user: int, idle: int) -> str:
    return f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


def test_other_processes_cpu_is_the_machines_less_this_ones(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(_stat_line(1000, 5000))
    own = iter([10.0, 10.5])  # this process used half a core-second
    clock = iter([100.0, 101.0])
    load = CpuLoad(stat, own_cpu=lambda: next(own), clock=lambda: next(clock))
    tick = cpu_load._TICK
    stat.write_text(_stat_line(1000 + int(1.7 * tick), 5000 + int(0.3 * tick)))
    assert load.others() == pytest.approx(1.2)


def test_an_unreadable_stat_gives_no_answer(tmp_path: Path) -> None:
    assert CpuLoad(tmp_path / "missing").others() is None


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_another_process_burning_a_core_is_seen() -> None:
    load = CpuLoad()
    burn = "import time\nend = time.time() + 0.8\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        time.sleep(0.6)
        others = load.others()
    finally:
        child.wait(timeout=30)
    assert others is not None and others >= 0.5


def test_a_look_from_a_given_start_spans_the_time_since_it(tmp_path: Path) -> None:
    """The first prompt of a launch: its engine is made milliseconds before it, so the
    first look spans the time since the launch's sample instead."""
    stat = tmp_path / "stat"
    stat.write_text(_stat_line(1000, 5000))
    before = CpuLoad(stat, own_cpu=lambda: 10.0, clock=lambda: 100.0)
    earlier, tick = before._last, cpu_load._TICK
    assert earlier is not None
    stat.write_text(_stat_line(1000 + int(0.8 * tick), 5000 + int(0.2 * tick)))
    clock = iter([100.5, 100.5])
    load = CpuLoad(stat, own_cpu=lambda: 10.2, clock=lambda: next(clock), start=earlier)
    assert load.others() == pytest.approx(1.2)  # 0.8 of 0.5 s others', less 0.2 own


def test_a_launchs_first_span_may_be_longer_than_a_replys(tmp_path: Path) -> None:
    """A machine so busy that the first prompt comes seconds after the window: the span
    since the launch still answers; later looks keep the usual limit."""
    stat = tmp_path / "stat"
    stat.write_text(_stat_line(1000, 5000))
    before = CpuLoad(stat, own_cpu=lambda: 10.0, clock=lambda: 100.0)
    tick = cpu_load._TICK
    stat.write_text(_stat_line(1000 + int(3 * tick), 5000 + int(1 * tick)))
    clock = iter([102.0, 104.0])
    launched = CpuLoad(stat, own_cpu=lambda: 10.0, clock=lambda: next(clock),
                       start=before._last)
    assert launched.others() == pytest.approx(1.5)  # 3 core-seconds in 2 s, none own
    assert launched.others() is None  # 2 s later: longer than a reply's span, afresh
    later = iter([104.0, 106.0])
    unlaunched = CpuLoad(stat, own_cpu=lambda: 10.0, clock=lambda: next(later))
    stat.write_text(_stat_line(1000 + int(6 * tick), 5000 + int(1 * tick)))
    assert unlaunched.others() is None  # 2 s without a launch's sample: no answer


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_the_first_engines_first_look_spans_the_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_load, "_launch", None)
    cpu_load.note_launch()
    burn = "import time\nend = time.time() + 0.8\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        time.sleep(0.6)
        launched = DecodeThreads(2, cores=2)._load  # made now, as the engine is at its load
        assert launched is not None
        others = launched.others()
        # Made now without the launch's sample, and looked at at once: on its own clock,
        # since a loaded machine may run this thread 50 ms later (a span, not nothing).
        unlaunched = CpuLoad(clock=lambda: 100.0).others()
    finally:
        child.wait(timeout=30)
    assert others is not None and others >= 0.5  # at once: the span since note_launch
    assert unlaunched is None  # a span of nothing: no answer (the first prompt's, before)
    first = cpu_load.launch_sample()
    cpu_load.note_launch()  # once per process
    assert cpu_load.launch_sample() is first


class AlternatingLoadFake(CpuLoad):
    """Stands in for a machine whose load cannot be set here: each look reports the next
    of ``values`` (other processes' cores)."""

    def __init__(self, *values: float) -> None:
        self.values = values
        self.looks = 0

    def others(self) -> float | None:
        self.looks += 1
        return self.values[(self.looks - 1) % len(self.values)]


@pytest.fixture(scope="module")
def engine(bundled_model_path: Path) -> Iterator[LlamaEngine]:
    yield from loaded_engine(bundled_model_path, n_threads=2)


def _reply(engine: LlamaEngine, *others: float) -> list[tuple[tuple[int, ...], float]]:
    engine.decode_threads = DecodeThreads(2, AlternatingLoadFake(*others), cores=2)
    engine.reset_context()
    seen: list[TokenLogprob] = []
    message = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                      content="Tell me about lighthouses.", created_at=0.0)
    engine.generate(GenerationRequest(
        (message,), "", SamplingParams(temperature=0.0, max_tokens=24, n_ctx=512, seed=1),
        "k", constraints=ReplyConstraints(top_logprobs=0, on_logprob=seen.append)),
        lambda _t: None, threading.Event())
    return [(t.bytes, t.logprob) for t in seen]


def test_a_reply_is_the_same_whatever_threads_decode_it(
        engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_threads, "INTERVAL", 0.0)  # a look before every token
    two = _reply(engine, 0.0)
    assert engine.decode_threads is not None and set(engine.decode_threads.tokens) == {2}
    switching = _reply(engine, 0.0, 2.0)
    assert engine.decode_threads is not None and set(engine.decode_threads.tokens) == {1, 2}
    one = _reply(engine, 2.0)
    assert engine.decode_threads is not None and set(engine.decode_threads.tokens) == {1}
    assert len(two) == 24
    assert switching == two  # bit for bit: same tokens, same log probabilities
    assert one == two


def test_a_recreated_context_gets_the_chosen_threads_again(
        engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_threads, "INTERVAL", 0.0)  # a look before every token
    llm = engine._llm
    assert llm is not None
    threads = DecodeThreads(2, AlternatingLoadFake(2.0, 2.0, 0.0), cores=2)
    threads.between_tokens(llm, counted=False)
    assert (internals.decode_thread_count(llm), internals.batch_thread_count(llm)) == (1, 1)
    internals.resize_context(llm, internals.context_size(llm) * 2)
    assert internals.decode_thread_count(llm) == 2  # a new context: the load options'
    threads.between_tokens(llm)  # still busy: the new context is set to one again
    assert (internals.decode_thread_count(llm), internals.batch_thread_count(llm)) == (1, 1)
    threads.between_tokens(llm, counted=False)  # room again: prompts get both back
    assert (internals.decode_thread_count(llm), internals.batch_thread_count(llm)) == (2, 2)
    assert threads.tokens == {1: 1}


def test_a_look_over_a_long_span_gives_no_answer_and_starts_afresh(tmp_path: Path) -> None:
    """The first look of a reply spans the time since the last reply (or the load): a
    machine busy then, idle now, must not halve the reply's threads."""
    stat = tmp_path / "stat"
    stat.write_text(_stat_line(1000, 5000))
    own = iter([10.0, 10.0, 10.5])
    clock = iter([100.0, 160.0, 160.5])
    load = CpuLoad(stat, own_cpu=lambda: next(own), clock=lambda: next(clock))
    tick = cpu_load._TICK
    stat.write_text(_stat_line(1000 + int(100 * tick), 5000))  # a minute of 100 s busy
    assert load.others() is None  # 60 s since the last look: no answer, a new span
    stat.write_text(_stat_line(1000 + int(100.5 * tick), 5000 + int(0.5 * tick)))
    assert load.others() == pytest.approx(0.0)  # the last half second: only this one
