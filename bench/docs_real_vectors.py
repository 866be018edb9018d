"""The coarse vector path with a real embedding model: all-MiniLM-L6-v2 (384 dimensions,
`bench/minilm_numpy.py`) over a real-text corpus of docstrings, against the exact scan.

Corpus: the docstrings of the Python standard library and of the packages installed
beside the app, each split into its first line (the summary) and the rest; the rest,
cut to its first ~50 words, is a passage. Questions: the summaries of a fixed sample of
them (e.g. "Return the number of items in the queue."), each answered by its own
passage: the end result is whether that passage is among the five found. Run:

    .venv/bin/python bench/docs_real_vectors.py [--passages 20000] [--questions 200]

The vectors are cached (`bench/results/cache/real-minilm-*.npz`); 2,000 passages took
~5 minutes of CPU here, 20,000 some ten times as long. Prints one JSON object; a corpus
smaller than 20,000 also gets candidate counts of the same share (`candidates_real`).
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / "results" / "cache"
WORDS = 50


def _docstrings(roots: list[Path]) -> list[tuple[str, str]]:
    """(summary, body) of every docstring under ``roots`` whose body has ≥ 15 words."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "test" in path.parts[-2:] or "tests" in path.parts:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except (SyntaxError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                         ast.ClassDef, ast.Module)):
                    continue
                doc = ast.get_docstring(node)
                pair = _split(doc) if doc else None
                if pair and pair[1] not in seen:
                    seen.add(pair[1])
                    out.append(pair)
    return out


def _split(doc: str) -> tuple[str, str] | None:
    head, _, rest = doc.strip().partition("\n")
    summary = " ".join(head.split())
    words = re.sub(r"[`*>|=~_-]{2,}", " ", rest).split()
    if len(summary.split()) < 4 or len(words) < 15:
        return None
    return summary, " ".join(words[:WORDS])


def corpus(passages: int, questions: int, seed: int = 21
           ) -> tuple[list[str], list[str], list[int]]:
    """``passages`` bodies, ``questions`` summaries and, for each, its passage's index."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    pairs = _docstrings(roots)
    if len(pairs) < passages:
        raise SystemExit(f"only {len(pairs)} docstrings found, {passages} asked for")
    rng = random.Random(seed)
    rng.shuffle(pairs)
    pairs = pairs[:passages]
    asked = rng.sample(range(passages), questions)
    return [b for _, b in pairs], [pairs[i][0] for i in asked], asked


def embedded(passages: int, questions: int) -> dict[str, Any]:
    """The corpus with its vectors, from the cache when there."""
    path = CACHE / f"real-minilm-{passages}p-{questions}q.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        return {k: data[k] for k in data.files}
    from minilm_numpy import MiniLM, find_wheel

    texts, asked, answers = corpus(passages, questions)
    model = MiniLM(find_wheel(CACHE))
    started = time.process_time()
    vecs = model.embed(texts)
    qvecs = model.embed(asked)
    out = {"texts": np.array(texts), "questions": np.array(asked),
           "answers": np.array(answers), "vectors": vecs, "qvectors": qvecs,
           "embed_cpu_s": np.array(time.process_time() - started)}
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".partial.npz"), **out)
    path.with_suffix(".partial.npz").rename(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--embed-only", action="store_true")
    args = parser.parse_args(argv)
    data = embedded(args.passages, args.questions)
    if args.embed_only:
        print(json.dumps({"passages": len(data["texts"]),
                          "embed_cpu_s": float(data["embed_cpu_s"])}))
        return 0
    from real_vectors_eval import evaluate

    print(json.dumps(evaluate(data), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
