"""``llamadesk --self-test``: prove an install works with the bundled model (the release
checks run it on each installed build, docs/packaging.md)."""

from __future__ import annotations

import threading
import time

from llamadesk.cli.chat import Printer, load_engine
from llamadesk.cli.errors import CliError
from llamadesk.core import bundled
from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.exit_codes import EXIT_OK

SELF_TEST_PROMPT = "What is the capital of France? Answer in one short sentence."


def self_test() -> int:
    """Prove an install works: verify and load the bundled model, answer a fixed prompt."""
    from llamadesk.core.conversation import Message
    from llamadesk.services.engine_errors import EngineError
    from llamadesk.services.engine_types import GenerationRequest
    from llamadesk.services.job_runner import run_job
    from llamadesk.services.jobs import GenerateJob

    started = time.perf_counter()
    try:
        bundled.locate(verify_hash=True)
        engine, _spec = load_engine(bundled.manifest().id, 2048)
    except (bundled.BundledModelError, EngineError) as exc:
        raise CliError(f"self-test failed: {exc}") from exc
    question = Message(id=0, conversation_id=0, parent_id=None, role=Role.USER,
                       content=SELF_TEST_PROMPT, created_at=time.time())
    params = SamplingParams(temperature=0.0, max_tokens=48, seed=1)
    job = GenerateJob(1, GenerationRequest((question,), "", params), None, threading.Event())
    try:
        end = run_job(job, lambda: engine, Printer(echo=False))
    finally:
        engine.unload()
    if end.result is None:
        raise CliError(f"self-test failed: {end.reason}")
    result = end.result
    if not result.text.strip():
        raise CliError("self-test failed: the model returned an empty answer")
    tps = result.stats.tokens_per_s or 0.0
    print(f"Q: {SELF_TEST_PROMPT}")
    print(f"A: {result.text.strip()}")
    _check_document_reader()
    print(f"self-test ok: {result.stats.completion_tokens} tokens at {tps:.1f} tokens/s, "
          f"{time.perf_counter() - started:.2f} s in all")
    return EXIT_OK


def _check_document_reader() -> None:
    """The window parses documents in a child process: check that this build starts one
    (a frozen program serves as its own child through multiprocessing)."""
    from llamadesk.core.documents.parse_process import ParserUnavailableError, check_reader
    from llamadesk.core.documents.parsers import DocumentError

    try:
        passages = check_reader()
    except (ParserUnavailableError, DocumentError) as exc:
        raise CliError(f"self-test failed: the document reader: {exc}") from exc
    print(f"document reader ok: {passages} passage read in a child process")
