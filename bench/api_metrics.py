"""The local API's cost over the engine: a streamed reply's tokens/s as an HTTP client
sees them ÷ the engine's own for the same reply, and the time to the first streamed
text minus the engine's own time to first token (queueing, HTTP, JSON and SSE)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import Goal, Metric, side, warmups
from harness import qapp

QUESTION = "Write a long story about a lighthouse keeper."


def _stream_once(http: Any, url: str, model: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first text, seconds from the first to the last text, tokens)."""
    body = {"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
            "seed": 1, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": QUESTION}]}
    sent = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with http.stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
            elif chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
    return first - sent, last - first, tokens


def run(work: Path, quick: bool, runs: int, settings: dict[str, Any] | None = None) -> list[Metric]:
    import os

    import httpx

    from llamadesk.api.server import ApiServer, ApiSettings
    from llamadesk.core import bundled
    from llamadesk.core.settings import AppSettings
    from llamadesk.services.inference import InferenceService
    from llamadesk.services.resolver import bundled_spec

    os.environ["LLAMADESK_HOME"] = str(work / "home-api")
    qapp()
    threads = (settings or {}).get("hardware", {}).get("n_threads")
    spec = bundled_spec(AppSettings())
    if threads:
        spec = replace(spec, options=replace(spec.options, n_threads=threads))
    max_tokens = 16 if quick else 128
    service = InferenceService()
    # The installed models as the app lists them; every request answered by the bundled
    # model's spec with the benchmark's threads.
    server = ApiServer(service, _installed, lambda _m: spec, ApiSettings(port=0))
    server.start()
    ratios: list[float] = []
    api_tps: list[float] = []
    engine_tps: list[float] = []
    overhead: list[float] = []
    try:
        url = f"{server.base_url}/chat/completions"
        with httpx.Client(timeout=600) as http:
            for i in range(warmups(1) + runs):
                to_first, streaming, tokens = _stream_once(http, url, bundled.manifest().id,
                                                           max_tokens)
                record = _last_record(server, i + 1)
                if i < warmups(1) or tokens < 2 or not record.tokens_per_s:
                    continue
                client = (tokens - 1) / streaming if streaming > 0 else float("nan")
                api_tps.append(client)
                engine_tps.append(record.tokens_per_s)
                ratios.append(client / record.tokens_per_s)
                overhead.append(to_first * 1000 - (record.ttft_ms or 0.0))
    finally:
        server.stop()
        service.shutdown()
    return [
        Metric("api_stream_ratio", "API streaming tokens/s ÷ the engine's own", "×",
               Goal(">=", 0.95), ratios,
               numerator=side("API client", "tokens/s", api_tps),
               reference=side("engine", "tokens/s", engine_tps),
               notes=f"{max_tokens}-token replies streamed over loopback SSE; the same "
                     "reply on both sides"),
        Metric("api_overhead_first_text", "API time to first text − engine TTFT", "ms",
               Goal("<=", 20), overhead,
               notes="request sent → first text chunk read, minus the engine's own "
                     "prompt-to-first-token time for that reply"),
    ]


def _installed() -> list[Any]:
    from llamadesk.core.paths import app_paths
    from llamadesk.core.registry import ModelRegistry

    return ModelRegistry(app_paths().ensure()).models()


def _last_record(server: Any, count: int) -> Any:
    deadline = time.monotonic() + 60
    while len(server.recent()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the API request never ended on the worker")
        time.sleep(0.002)
    return server.recent()[-1]
