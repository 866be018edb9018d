"""The model loaded before the window (services/llama_early.py, engine_import.py), with
the real bundled model through real llama.cpp: the engine takes it only when it loads
the same file with the same parameters, a reply from it equals one from a model loaded
the usual way, another file or other settings get their own load and the early model is
freed, a damaged file still gets the engine's clear error, and a process that exits
during the early load exits cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from model_files import variant_of

from llamadesk.core import bundled
from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services import engine_import, llama_early
from llamadesk.services.constraints import ReplyConstraints, TokenLogprob
from llamadesk.services.engine import EngineError, GenerationRequest, LlamaEngine, LoadOptions

OPTIONS = LoadOptions(n_ctx=2048, n_threads=1)


@pytest.fixture(autouse=True)
def no_early_model() -> Iterator[None]:
    llama_early.forget_for_tests()
    engine_import.show_first(None)  # no window here: a new chat's model
    yield
    llama_early.forget_for_tests()


def _reply(engine: LlamaEngine) -> list[tuple[tuple[int, ...], float]]:
    """A greedy reply's tokens (as bytes) and their log probabilities."""
    seen: list[TokenLogprob] = []
    question = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                       content="Name three colours.", created_at=0.0)
    request = GenerationRequest(
        (question,), "You are terse.", SamplingParams(temperature=0.0, max_tokens=12, seed=1),
        "early", constraints=ReplyConstraints(top_logprobs=0, on_logprob=seen.append))
    engine.generate(request, lambda _text: None, threading.Event())
    return [(t.bytes, t.logprob) for t in seen]


def _early_model() -> object:
    early = llama_early._early
    return None if early is None else early.model


def test_the_engine_takes_the_early_model_and_answers_as_from_its_own_load(
        bundled_model_path: Path) -> None:
    fresh = LlamaEngine()
    fresh.load(bundled_model_path, OPTIONS)
    expected = _reply(fresh)
    fresh.unload()
    assert llama_early.adopted == 0  # nothing was loaded early for that one
    llama_early.forget_for_tests()  # that load closed the early one (a new process)

    assert llama_early.load_early(str(bundled_model_path), OPTIONS.n_gpu_layers)
    engine = LlamaEngine()
    engine.load(bundled_model_path, OPTIONS)
    assert llama_early.adopted == 1
    assert _early_model() is None  # the engine's Llama owns it now, and frees it
    llm = engine._llm
    assert llm is not None
    assert int(llm.context_params.n_threads) == OPTIONS.n_threads  # the context is its own
    got = _reply(engine)
    assert [t for t, _ in got] == [t for t, _ in expected] and len(got) >= 3
    assert all(abs(x - y) <= 1e-3 for (_, x), (_, y) in zip(got, expected, strict=True))
    engine.unload()


def test_a_load_under_way_is_waited_for_and_taken(bundled_model_path: Path) -> None:
    loader = threading.Thread(target=llama_early.load_early,
                              args=(str(bundled_model_path), 0))
    loader.start()
    engine = LlamaEngine()
    engine.load(bundled_model_path, OPTIONS)  # may begin before llama.cpp has finished
    loader.join()
    assert llama_early.adopted == 1
    assert _reply(engine)
    engine.unload()


def test_another_model_chosen_meanwhile_is_loaded_and_the_early_one_freed(
        bundled_model_path: Path, tmp_path: Path) -> None:
    other = variant_of(bundled_model_path, tmp_path / "other.gguf")
    assert llama_early.load_early(str(bundled_model_path), 0)
    engine = LlamaEngine()
    info = engine.load(other, OPTIONS)
    assert info.path == str(other)
    assert llama_early.adopted == 0
    assert _early_model() is None  # freed, not kept beside the chosen model
    engine.unload()


def test_other_load_settings_get_their_own_load(bundled_model_path: Path) -> None:
    assert llama_early.load_early(str(bundled_model_path), 0)
    engine = LlamaEngine()
    engine.load(bundled_model_path, LoadOptions(n_ctx=2048, n_threads=1, n_gpu_layers=5))
    assert llama_early.adopted == 0  # loaded for 0 GPU layers: not this load
    assert _early_model() is None
    engine.unload()


def test_a_damaged_file_is_not_loaded_early_and_the_engine_says_why(
        bundled_model_path: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(bundled_model_path.read_bytes()[: 1 << 20])  # cut short
    assert not llama_early.load_early(str(damaged), 0)
    with pytest.raises(EngineError, match=r"damaged|Download or convert"):
        LlamaEngine().load(damaged, OPTIONS)
    assert llama_early.adopted == 0


def test_the_same_params_only_when_every_field_matches() -> None:
    a, b = llama_early.model_params(0), llama_early.model_params(0)
    assert llama_early.same_params(a, b)
    b.n_gpu_layers = 3
    assert not llama_early.same_params(a, b)
    c = llama_early.model_params(0)
    c.vocab_only = True
    assert not llama_early.same_params(a, c)


def _write_settings(home: Path, settings: dict[str, object]) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps(settings), encoding="utf-8")


def test_the_model_loaded_first_follows_the_settings(home: Path,
                                                     bundled_model_path: Path) -> None:
    from llamadesk.services.fit_check import supports_gpu_offload

    # the default offload (Automatic) is sized by the engine's own load where llama.cpp
    # can offload: nothing is loaded early there
    automatic = None if supports_gpu_offload() else (str(bundled_model_path), 0)
    assert engine_import.model_to_load_first() == automatic
    _write_settings(home, {"hardware": {"gpu_layers": "none"}})
    assert engine_import.model_to_load_first() == (str(bundled_model_path), 0)
    # a default model that answers remotely: nothing to load here
    _write_settings(home, {"model_id": "work/some-model", "connections": [
        {"name": "work", "base_url": "http://127.0.0.1:9/v1", "enabled": True}]})
    assert engine_import.model_to_load_first() is None
    # a default model that is not installed: the window's own load says so
    _write_settings(home, {"model_id": "not-installed"})
    assert engine_import.model_to_load_first() is None


def test_a_missing_bundled_model_loads_nothing_early(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(verify_hash: bool = False) -> bundled.BundledModel:
        raise bundled.BundledModelError("The bundled model is missing.")

    monkeypatch.setattr(bundled, "locate", missing)
    assert engine_import.model_to_load_first() is None


CHILD = """
import sys, threading
from llamadesk.services import engine_import, llama_early
from llamadesk.services.constraints import ReplyConstraints, TokenLogprob
engine_import.start_early()
print("threads", sorted(t.name for t in threading.enumerate()
                        if t.name in ("engine-import", "model-early")), flush=True)
import atexit
atexit.register(lambda: print("at-exit", llama_early._early is not None
                              and llama_early._early.done.is_set(), flush=True))
sys.exit(0)  # at once, while the model loads
"""


def test_an_exit_during_the_early_load_is_clean(home: Path, bundled_model_path: Path) -> None:
    _write_settings(home, {"hardware": {"gpu_layers": "none"}})  # a load on any build
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env={**os.environ}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "at-exit True" in done.stdout.splitlines()  # the exit waited for the load
    assert "Traceback" not in done.stderr and "Fatal" not in done.stderr


BINDINGS_ALONE = """
import sys
from llamadesk.services.llama_early import bindings
b = bindings()
print("alone", "numpy" in sys.modules, "llama_cpp" in sys.modules, flush=True)
import llama_cpp
print("same", llama_cpp.llama_cpp is b, llama_cpp.llama_backend_init is b.llama_backend_init,
      hasattr(llama_cpp, "Llama"), flush=True)
"""


def test_the_bindings_load_without_the_package_and_the_package_uses_them() -> None:
    done = subprocess.run([sys.executable, "-c", BINDINGS_ALONE], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "alone False False" in done.stdout.splitlines()
    assert "same True True True" in done.stdout.splitlines()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's niceness: Linux")
def test_the_early_load_runs_behind_the_window_thread() -> None:
    """The thread's Python (the bindings, the header check) runs at the usual priority;
    llama.cpp's load in C at a lower one."""
    seen: list[tuple[str, int, int, int]] = []

    def load(path: str, n_gpu_layers: int, before_c_load: Callable[[], None]) -> bool:
        thread = threading.get_native_id()
        python = os.getpriority(os.PRIO_PROCESS, thread)
        before_c_load()
        seen.append((path, n_gpu_layers, python, os.getpriority(os.PRIO_PROCESS, thread)))
        return True

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with mock.patch.object(llama_early, "load_early", load):
        loader = threading.Thread(target=engine_import._load_early, args=("model.gguf", 3))
        loader.start()
        loader.join()
    assert seen == [("model.gguf", 3, before, min(19, before + engine_import.LOAD_NICENESS))]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_a_chat_that_answers_remotely_frees_the_early_model(bundled_model_path: Path) -> None:
    from llamadesk.services.inference_signals import InferenceSignals
    from llamadesk.services.inference_worker import InferenceWorker

    assert llama_early.load_early(str(bundled_model_path), 0)
    InferenceWorker(InferenceSignals(), 1 << 20).release_early()  # load_model(remote) asks
    assert _early_model() is None
    assert llama_early.adopted == 0


def test_a_module_another_thread_is_still_importing_is_given_whole(tmp_path: Path,
                                                                   monkeypatch: pytest
                                                                   .MonkeyPatch) -> None:
    """The bindings asked for (a send's load options) while the engine's import thread
    is running the same module: a half-made module lacked the names after the point
    reached (an AttributeError on the first send, seen in launches); the import system
    is waited on instead. A module held mid-import stands in for llama_cpp.py."""
    (tmp_path / "held_bindings.py").write_text(
        "import threading\n"
        "first = 1\n"
        "reached = threading.Event()\n"
        "go_on = threading.Event()\n"
        "import builtins\n"
        "builtins._held_bindings = (reached, go_on)\n"
        "reached.set()\n"
        "go_on.wait(30)\n"
        "defined_late = 2\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "held_bindings", raising=False)
    importer = threading.Thread(target=__import__, args=("held_bindings",))
    importer.start()
    try:
        import builtins

        for _ in range(3000):
            held = getattr(builtins, "_held_bindings", None)
            if held is not None and held[0].is_set():
                break
            threading.Event().wait(0.01)
        assert "held_bindings" in sys.modules  # half-made, as the engine's import leaves it
        assert not hasattr(sys.modules["held_bindings"], "defined_late")
        got: list[object] = []
        asker = threading.Thread(target=lambda: got.append(
            llama_early.finished_module("held_bindings")))
        asker.start()
        asker.join(0.3)
        assert asker.is_alive()  # waiting for the import, not handed the half-made module
        held[1].set()
        asker.join(30)
        assert getattr(got[0], "defined_late", None) == 2
    finally:
        held_now = getattr(builtins, "_held_bindings", None)
        if held_now is not None:
            held_now[1].set()
            del builtins._held_bindings
        importer.join(30)
        sys.modules.pop("held_bindings", None)
    assert llama_early.finished_module("not_imported_by_anyone") is None


def test_an_engine_loaded_before_any_early_load_closes_it(bundled_model_path: Path) -> None:
    """The niced early thread starved until the engine had loaded its own model: a load
    beginning then would be taken by nobody and stay in memory, so it does not begin."""
    engine = LlamaEngine()
    engine.load(bundled_model_path, OPTIONS)
    assert not llama_early.load_early(str(bundled_model_path), 0)
    assert _early_model() is None and llama_early.adopted == 0
    engine.unload()


def test_the_embedder_leaves_the_chats_early_model_alone(bundled_model_path: Path,
                                                         tmp_path: Path) -> None:
    """Documents embedded with another file first: the chat's early model is kept for
    the chat's engine, which then takes it."""
    from llamadesk.services.embedder import Embedder

    other = variant_of(bundled_model_path, tmp_path / "embed.gguf")
    assert llama_early.load_early(str(bundled_model_path), 0)
    embedder = Embedder()
    try:
        assert embedder.embed(str(other), ["a passage"], n_threads=1)
    finally:
        embedder.close()
    assert _early_model() is not None
    engine = LlamaEngine()
    engine.load(bundled_model_path, OPTIONS)
    assert llama_early.adopted == 1
    engine.unload()


LOG_CHILD = """
from llamadesk.services import engine_import
engine_import.start_early()
engine_import._thread.join()
"""


def test_the_early_loads_lines_go_to_the_log_not_to_stderr(home: Path,
                                                           bundled_model_path: Path) -> None:
    """llama_cpp's package import sets its own log callback (stderr) while the early load
    writes its lines: the app's routing is set again after it."""
    _write_settings(home, {"hardware": {"gpu_layers": "none"}})
    done = subprocess.run([sys.executable, "-c", LOG_CHILD], capture_output=True, text=True,
                          env={**os.environ}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "llama_model_loader" not in done.stderr and "load_tensors" not in done.stderr


QUIET_CHILD = """
import logging, sys
from llamadesk.services import engine_import, llama_early
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
log = logging.getLogger("llama.cpp")
log.setLevel(logging.DEBUG)
log.addHandler(Keep())
from llamadesk.services.engine import LlamaEngine, LoadOptions  # its own log callback
engine_import._load_early(sys.argv[1], 0)
print("loaded", llama_early._early is not None and llama_early._early.model is not None)
print("lines while loading", len(records))
LlamaEngine().load(sys.argv[1], LoadOptions(n_ctx=512, n_threads=1))
print("adopted", llama_early.adopted)
print("lines after", len(records) > 0)
"""


def test_the_early_loads_lines_are_dropped_in_c_and_later_ones_logged(
        home: Path, bundled_model_path: Path) -> None:
    """llama.cpp writes ~1,200 lines while it loads; through Python each would wait for
    the interpreter that the window and the engine's import hold. They are dropped in
    C during the early load; what llama.cpp writes after it (the context the engine
    makes) reaches the log again."""
    done = subprocess.run([sys.executable, "-c", QUIET_CHILD, str(bundled_model_path)],
                          capture_output=True, text=True, env={**os.environ}, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["loaded True", "lines while loading 0", "adopted 1",
                                        "lines after True"]
    assert "llama_model_loader" not in done.stderr and "load_tensors" not in done.stderr
