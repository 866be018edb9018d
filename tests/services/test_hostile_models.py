"""The hostile corpus offered to ``LlamaEngine.load`` (and a few tokens of generation):
each file loads or is refused with a readable EngineError, and the process never dies.

The loads run in child processes (tests/support/load_batch.py), a batch each: a file
that crashed llama.cpp would end its child without an outcome, which fails this test
with the file's name instead of killing the test run. Hostile chat templates ride along:
a model whose template hangs, escapes or floods still answers, with its fallback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gguf_tools import tiny_model, write_corpus

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "tests" / "support" / "load_batch.py"
BATCHES = 3

HOSTILE_TEMPLATES = {
    "template: nested ranges": "{% for i in range(100000) %}{% for j in range(100000) %}"
                               "{% endfor %}{% endfor %}",
    "template: sandbox escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "template: huge output": "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
    "template: does not compile": "{% for m in messages %}",
}


def run_batches(files: list[str], batches: int = BATCHES) -> tuple[dict[str, dict[str, str]],
                                                                    list[str]]:
    """Load every file; returns each file's outcome and the files that killed a child."""
    outcomes: dict[str, dict[str, str]] = {}
    crashed: list[str] = []
    pending = list(files)
    size = max(1, -(-len(files) // batches))
    while pending:
        batch, pending = pending[:size], pending[size:]
        while batch:
            done = subprocess.run([sys.executable, str(LOADER), *batch], capture_output=True,
                                  text=True, timeout=600, cwd=ROOT)
            started = None
            for line in done.stdout.splitlines():
                if not line.startswith("@@"):
                    continue
                record = json.loads(line[2:])
                if "outcome" in record:
                    outcomes[record["file"]] = record
                else:
                    started = record["file"]
            left = [f for f in batch if f not in outcomes]
            if left and started in left:
                crashed.append(started)  # it died on this one; go on with the rest
                left.remove(started)
            elif left:
                pytest.fail(f"the loader stopped before {left[0]} (exit {done.returncode}):\n"
                            f"{done.stderr[-2000:]}")
            batch = left
    return outcomes, crashed


@pytest.mark.slow
def test_the_hostile_corpus_never_kills_the_process(tmp_path: Path) -> None:
    tiny = tiny_model(tmp_path / "tiny.gguf")
    corpus = write_corpus(tiny, tmp_path / "damaged")
    for i, (name, source) in enumerate(HOSTILE_TEMPLATES.items()):
        corpus[name] = tiny_model(tmp_path / f"template-{i}.gguf",
                                  metadata={"tokenizer.chat_template": source})
    corpus["undamaged"] = tiny
    by_path = {str(p): name for name, p in corpus.items()}

    outcomes, crashed = run_batches(list(by_path))

    assert not crashed, f"llama.cpp killed the process on: {[by_path[f] for f in crashed]}"
    assert set(outcomes) == set(by_path)
    named = {by_path[f]: o for f, o in outcomes.items()}
    for name, outcome in named.items():
        if outcome["outcome"] == "refused":
            assert outcome["reason"] and "Traceback" not in outcome["reason"], name
    assert named["undamaged"]["outcome"] == "loaded"
    for name in HOSTILE_TEMPLATES:
        assert named[name]["outcome"] == "loaded", (name, named[name])
    refused = [n for n, o in named.items() if o["outcome"] == "refused"]
    assert any(n.startswith("truncated at") for n in refused)
    assert "bad magic" in refused and "tensor offset past the end" in refused
