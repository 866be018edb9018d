"""Input the embedder refuses before llama.cpp sees it (services/embedder.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
from llamadesk.services.embedder import Embedder
from llamadesk.services.engine_errors import EngineError
embedder = Embedder()
try:
    embedder.embed(sys.argv[1], ["Where is the lighthouse?", ""], 1)
except EngineError as exc:
    print("refused:", exc)
print("then", len(embedder.embed(sys.argv[1], ["Where is the lighthouse?"], 1).vectors))
embedder.close()
print("closed")
"""


def test_a_text_with_no_tokens_is_refused_and_the_embedder_goes_on(
        bundled_model_path: Path) -> None:
    """In a child: llama.cpp refuses an empty batch, and freeing the context after that
    refusal aborted the process (a double free) — the API refuses "" itself, a passage or
    a question could still reach it."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(bundled_model_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["refused: input[1] holds no text to embed.",
                                        "then 1", "closed"]
