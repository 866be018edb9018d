"""Load each model file named on the command line with ``LlamaEngine.load``, in this one
process, and report on stdout one line per step, ``@@`` and a JSON object (llama.cpp may
print to stdout too; other lines are its):

    @@{"file": ..., "started": true}                       before the attempt
    @@{"file": ..., "outcome": "loaded"|"refused", "reason": ...}   after it

A file that kills the process leaves a "started" line without an outcome: the parent
(``tests/services/test_hostile_models.py``) runs batches in child processes so such a
crash is seen as a failure of that file, not as a dead test run. A loaded model also
answers a few tokens, so a file that loads but breaks generation is caught too.
"""

from __future__ import annotations

import json
import sys
import threading

from llamadesk.core.conversation import Message, Role, SamplingParams
from llamadesk.services.engine import (
    EngineError,
    GenerationRequest,
    LlamaEngine,
    LoadOptions,
    install_llama_log_routing,
)


def _say(record: dict[str, object]) -> None:
    sys.stdout.write("\n@@" + json.dumps(record) + "\n")
    sys.stdout.flush()


def main(paths: list[str]) -> int:
    """Try every file; exit 0 when every attempt ended in an outcome."""
    install_llama_log_routing()
    engine = LlamaEngine()
    question = Message(id=0, conversation_id=0, parent_id=None, role=Role.USER,
                       content="Hello", created_at=0.0)
    params = SamplingParams(max_tokens=4, temperature=0.0, seed=1)
    for path in paths:
        _say({"file": path, "started": True})
        try:
            engine.load(path, LoadOptions(n_ctx=256, n_threads=1, n_batch=64))
            result = engine.generate(GenerationRequest((question,), "", params),
                                     lambda _text: None, threading.Event())
        except EngineError as exc:
            _say({"file": path, "outcome": "refused", "reason": str(exc)})
        else:
            _say({"file": path, "outcome": "loaded",
                  "reason": f"{result.stats.completion_tokens} tokens"})
        finally:
            engine.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
