"""The local API over raw HTTP (httpx): SSE framing, disconnects, many clients at once,
the queue limit, and stopping."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from api_support import LiveApi, start_server

from llamadesk.api.jobs import RequestRecord
from llamadesk.core import bundled
from llamadesk.services.inference import InferenceService

LONG_REPLY = {"messages": [{"role": "user", "content": "Count from 1 to 1000."}],
              "max_tokens": 1500, "temperature": 0, "stream": True}


def wait_for_record(api: LiveApi, count: int, timeout_s: float = 60.0) -> list[RequestRecord]:
    deadline = time.monotonic() + timeout_s
    while len(api.server.recent()) < count:
        assert time.monotonic() < deadline, "the request never ended on the worker"
        time.sleep(0.005)
    return api.server.recent()


def test_sse_framing_is_data_lines_ending_in_done(api: LiveApi) -> None:
    body = {"model": api.model_id, "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 8, "temperature": 0, "stream": True}
    with httpx.Client(timeout=120) as http, \
            http.stream("POST", f"{api.base_url}/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    # A comment event (": ping", sent every 15 s on a slow reply) is part of SSE.
    events = [e for e in raw.split("\n\n") if e.strip() and not e.startswith(":")]
    assert all(e.startswith("data: ") and "\n" not in e for e in events), raw[:300]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "usage" not in chunks[0]


def test_bad_json_and_bad_parameters_are_400(api: LiveApi) -> None:
    url = f"{api.base_url}/chat/completions"
    with httpx.Client(timeout=30) as http:
        bad_json = http.post(url, content=b"{not json", headers={
            "content-type": "application/json"})
        assert bad_json.status_code == 400
        assert bad_json.json()["error"]["type"] == "invalid_request_error"
        bad_value = http.post(url, json={"model": api.model_id, "temperature": 9,
                                         "messages": [{"role": "user", "content": "x"}]})
        assert bad_value.status_code == 400
        assert bad_value.json()["error"]["param"] == "temperature"
        missing = http.post(url, json={"model": api.model_id})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
        nothing = http.get(f"{api.base_url}/nothing-here")
        assert nothing.status_code == 404 and "error" in nothing.json()


def test_a_client_that_disconnects_stops_its_generation(api: LiveApi) -> None:
    body = {"model": api.model_id, **LONG_REPLY}
    with httpx.Client(timeout=120) as http:
        with http.stream("POST", f"{api.base_url}/chat/completions", json=body) as response:
            lines = response.iter_lines()
            seen = [line for _, line in zip(range(12), lines, strict=False)]
            assert any('"content"' in line for line in seen)
            closed_at = time.monotonic()
        # Leaving the block closed the connection mid-stream.
        record = wait_for_record(api, 1)[-1]
        latency_ms = (record.ended_monotonic - closed_at) * 1000
        print(f"\nstop latency after disconnect: {latency_ms:.1f} ms")
        assert record.status == "stopped"
        assert record.completion_tokens is not None and record.completion_tokens < 1500
        after = http.post(f"{api.base_url}/chat/completions", json={
            "model": api.model_id, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}]})
        assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"]


def _ask_for(api: LiveApi, number: int, stream: bool) -> int:
    """Ask for a JSON object holding ``number``; return the number in the reply."""
    body = {"model": api.model_id, "max_tokens": 40, "stream": stream,
            "messages": [{"role": "user", "content": f"Say {number}."}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "n", "schema": {"type": "object", "required": ["n"],
                                        "properties": {"n": {"const": number}}}}}}
    with httpx.Client(timeout=300) as http:
        if not stream:
            response = http.post(f"{api.base_url}/chat/completions", json=body)
            assert response.status_code == 200, response.text
            return int(json.loads(response.json()["choices"][0]["message"]["content"])["n"])
        text = []
        with http.stream("POST", f"{api.base_url}/chat/completions", json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    text.append(delta.get("content") or "")
        return int(json.loads("".join(text))["n"])


def test_twenty_clients_at_once_all_get_their_own_answer(api: LiveApi) -> None:
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: _ask_for(api, n, stream=n % 2 == 0), range(20)))
    assert answers == list(range(20))
    records = wait_for_record(api, 20)
    assert [r.status for r in records] == ["finished"] * 20
    started = [r.started_at for r in records]
    assert started == sorted(started), "first come, first served"


def test_requests_beyond_the_queue_limit_get_429(service: InferenceService,
                                                 bundled_model_path: object) -> None:
    server = start_server(service, queue_limit=1)
    try:
        body = {"model": bundled.manifest().id, **LONG_REPLY}
        with httpx.Client(timeout=120) as http:
            with http.stream("POST", f"{server.base_url}/chat/completions",
                             json=body) as first:
                next(first.iter_lines())
                second = http.post(f"{server.base_url}/chat/completions", json=body)
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "rate_limit_exceeded"
    finally:
        server.stop()


def test_stop_ends_a_streaming_request_at_once(api: LiveApi) -> None:
    body = {"model": api.model_id, **LONG_REPLY}
    failure: list[BaseException] = []
    streaming = threading.Event()

    def client() -> None:
        try:
            with httpx.Client(timeout=60) as http, \
                    http.stream("POST", f"{api.base_url}/chat/completions",
                                json=body) as response:
                for _line in response.iter_lines():
                    streaming.set()
        except httpx.HTTPError:
            pass  # the server went away mid-stream: expected
        except BaseException as exc:  # reported below
            failure.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert streaming.wait(60)
    started = time.monotonic()
    api.server.stop()
    print(f"\nserver stop took {(time.monotonic() - started) * 1000:.1f} ms")
    thread.join(30)
    assert not thread.is_alive() and not failure
    assert not api.server.running
    with httpx.Client(timeout=5) as http:
        try:
            http.get(f"{api.base_url}/models")
            raise AssertionError("the server still answers")
        except httpx.ConnectError:
            pass
