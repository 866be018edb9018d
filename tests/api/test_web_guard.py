"""A web page the user visits cannot drive the local API: a foreign Host (DNS
rebinding), a foreign Origin (preflight or not) and a body a page may send without
asking (text, forms) are refused before any route runs, streaming ones included; the
host names and origins the user allows, and programs that send no Origin, are served.
Every test is real HTTP on a free loopback port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from api_support import start_server

from llamadesk.api.guard import host_allowed
from llamadesk.api.server import ApiServer, ApiSettings
from llamadesk.core import bundled
from llamadesk.services.inference import InferenceService

REBOUND = "rebind.attacker.example"
PAGE = "http://127.0.0.1:5173"  # another program's page on this computer
ELSEWHERE = "https://evil.example"


@pytest.fixture
def server(service: InferenceService) -> Iterator[ApiServer]:
    api = start_server(service)
    yield api
    api.stop()


def requests_of_every_kind(model: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) for each route, streaming and not."""
    chat = {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    return [
        ("GET", "/v1/models", None),
        ("GET", f"/v1/models/{model}", None),
        ("POST", "/v1/chat/completions", chat),
        ("POST", "/v1/chat/completions", {**chat, "stream": True}),
        ("POST", "/v1/completions", {"model": model, "prompt": "Hi", "max_tokens": 4}),
        ("POST", "/v1/completions", {"model": model, "prompt": "Hi", "max_tokens": 4,
                                     "stream": True}),
        ("POST", "/v1/embeddings", {"model": model, "input": "Hi"}),
    ]


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error"
    return str(error["message"])


def origin_of(server: ApiServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def test_a_rebound_host_name_is_refused_on_every_route(server: ApiServer,
                                                       service: InferenceService) -> None:
    host = f"{REBOUND}:{server.port}"
    with httpx.Client(base_url=origin_of(server), timeout=30) as http:
        for method, path, body in requests_of_every_kind(bundled.manifest().id):
            response = http.request(method, path, json=body, headers={"Host": host})
            message = refused(response, 403, "host_not_allowed")
            assert REBOUND in message and "--allow-host" in message
            assert "text/event-stream" not in response.headers["content-type"]
        # A rebound name with no port, or no Host at all, is refused just the same.
        for headers in ({"Host": REBOUND}, {"Host": ""}, {"Host": "127.0.0.1.evil.example"}):
            refused(http.get("/v1/models", headers=headers), 403, "host_not_allowed")
    assert server.recent() == [], "no job was queued"
    assert service.model_info is None, "no model was loaded"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
def test_this_computers_own_names_are_served(server: ApiServer, host: str) -> None:
    with httpx.Client(base_url=origin_of(server), timeout=30) as http:
        for value in (host, f"{host}:{server.port}"):
            response = http.get("/v1/models", headers={"Host": value})
            assert response.status_code == 200 and response.json()["object"] == "list"


def test_chats_streaming_and_not_are_served_with_a_local_host(
        server: ApiServer, bundled_model_path: Path) -> None:
    """The refusals above are the Host's doing: the same requests from this computer
    are answered by the real model."""
    model = bundled.manifest().id
    chat = {"model": model, "max_tokens": 3, "seed": 1,
            "messages": [{"role": "user", "content": "Hi"}]}
    with httpx.Client(base_url=origin_of(server), timeout=300) as http:
        plain = http.post("/v1/chat/completions", json=chat,
                          headers={"Host": f"localhost:{server.port}"})
        assert plain.status_code == 200
        assert plain.json()["choices"][0]["message"]["content"]
        with http.stream("POST", "/v1/chat/completions", json={**chat, "stream": True},
                         headers={"Host": f"localhost:{server.port}"}) as streamed:
            assert streamed.status_code == 200
            lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]" and len(lines) >= 3


def test_a_host_name_the_user_allowed_is_served(service: InferenceService) -> None:
    server = start_server(service, allowed_hosts=("llm.home.arpa",))
    try:
        with httpx.Client(base_url=origin_of(server), timeout=30) as http:
            for host in ("llm.home.arpa", f"LLM.Home.Arpa:{server.port}"):
                assert http.get("/v1/models", headers={"Host": host}).status_code == 200
            for host in ("evil.home.arpa", "llm.home.arpa.evil.example"):
                refused(http.get("/v1/models", headers={"Host": host}), 403,
                        "host_not_allowed")
    finally:
        server.stop()


def test_a_web_origin_that_is_not_allowed_is_refused(server: ApiServer) -> None:
    chat = {"model": bundled.manifest().id, "max_tokens": 2,
            "messages": [{"role": "user", "content": "Hi"}]}
    with httpx.Client(base_url=origin_of(server), timeout=30) as http:
        for origin in (PAGE, ELSEWHERE, "null", origin_of(server)):
            headers = {"Origin": origin}
            message = refused(http.get("/v1/models", headers=headers), 403,
                              "origin_not_allowed")
            assert origin in message and "--allow-origin" in message
            refused(http.post("/v1/chat/completions", json=chat, headers=headers), 403,
                    "origin_not_allowed")
            refused(http.post("/v1/chat/completions", json={**chat, "stream": True},
                              headers=headers), 403, "origin_not_allowed")
            preflight = http.options("/v1/chat/completions", headers={
                **headers, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, authorization"})
            refused(preflight, 403, "origin_not_allowed")
            assert "access-control-allow-origin" not in preflight.headers
    assert server.recent() == []


def test_an_allowed_origin_gets_cors_and_no_other_does(service: InferenceService) -> None:
    server = start_server(service, allowed_origins=(PAGE,))
    try:
        with httpx.Client(base_url=origin_of(server), timeout=30) as http:
            listed = http.get("/v1/models", headers={"Origin": PAGE})
            assert listed.status_code == 200
            assert listed.headers["access-control-allow-origin"] == PAGE
            preflight = http.options("/v1/chat/completions", headers={
                "Origin": PAGE, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-stainless-os"})
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == PAGE
            assert "x-stainless-os" in preflight.headers["access-control-allow-headers"]
            other = http.get("/v1/models", headers={"Origin": "http://127.0.0.1:5174"})
            refused(other, 403, "origin_not_allowed")
            no_origin = http.get("/v1/models")
            assert no_origin.status_code == 200
            assert "access-control-allow-origin" not in no_origin.headers
    finally:
        server.stop()


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", ""])
def test_bodies_a_page_may_send_without_asking_are_refused(server: ApiServer,
                                                           content_type: str) -> None:
    """A valid chat request, sent as a page's form, text or untyped body would be:
    refused, with no Origin to help (a rebinding page or a form on a foreign site)."""
    body = json.dumps({"model": bundled.manifest().id, "max_tokens": 2,
                       "messages": [{"role": "user", "content": "Hi"}]})
    with httpx.Client(base_url=origin_of(server), timeout=30) as http:
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
            headers = {"Content-Type": content_type} if content_type else {}
            response = http.post(path, content=body, headers=headers)
            assert "application/json" in refused(response, 415, "unsupported_content_type")
    assert server.recent() == []


def test_the_openai_client_on_this_computer_is_unaffected(
        server: ApiServer, bundled_model_path: Path) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0,
                           timeout=300)
    assert bundled.manifest().id in [m.id for m in client.models.list()]
    reply = client.chat.completions.create(
        model=bundled.manifest().id, max_tokens=4, seed=1,
        messages=[{"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content
    words = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model=bundled.manifest().id, max_tokens=4, seed=1, stream=True,
        messages=[{"role": "user", "content": "Hello"}]) if c.choices]
    assert "".join(words) == reply.choices[0].message.content


def test_with_the_key_required_on_loopback_only_it_gets_in(service: InferenceService) -> None:
    server = start_server(service, api_key="ld-loopback-key")
    try:
        keyless = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            keyless.models.list()
        assert caught.value.status_code == 401
        keyed = openai.OpenAI(base_url=server.base_url, api_key="ld-loopback-key",
                              max_retries=0)
        assert bundled.manifest().id in [m.id for m in keyed.models.list()]
        with httpx.Client(base_url=origin_of(server), timeout=30) as http:
            # The Host check comes first: the key does not let a rebound page in.
            refused(http.get("/v1/models", headers={
                "Host": REBOUND, "Authorization": "Bearer ld-loopback-key"}), 403,
                "host_not_allowed")
    finally:
        server.stop()


def test_access_changes_while_it_runs(server: ApiServer) -> None:
    with httpx.Client(base_url=origin_of(server), timeout=30) as http:
        refused(http.get("/v1/models", headers={"Origin": PAGE}), 403, "origin_not_allowed")
        server.set_access(None, (PAGE,), ("llm.home.arpa",))
        assert http.get("/v1/models", headers={"Origin": PAGE}).status_code == 200
        assert http.get("/v1/models", headers={"Host": "llm.home.arpa"}).status_code == 200
        server.set_access("ld-now", (), ())
        refused(http.get("/v1/models", headers={"Origin": PAGE}), 403, "origin_not_allowed")
        refused(http.get("/v1/models"), 401, "invalid_api_key")


@pytest.mark.parametrize(("bound", "host", "allowed"), [
    ("127.0.0.1", "localhost:8716", True),
    ("127.0.0.1", "[::1]:8716", True),
    ("127.0.0.1", "192.168.1.10:8716", False),  # not this loopback server's address
    ("127.0.0.1", "llm.home.arpa", True),
    ("0.0.0.0", "192.168.1.10:8716", True),  # beyond loopback, clients use an address
    ("0.0.0.0", "[fd00::5]:8716", True),
    ("0.0.0.0", "llm.home.arpa:8716", True),
    ("0.0.0.0", f"{REBOUND}:8716", False),  # a name is allowed only when listed
    ("box.home.arpa", "box.home.arpa:8716", True),  # the name it listens on
    ("box.home.arpa", f"{REBOUND}", False),
])
def test_which_hosts_are_answered_where_it_listens(bound: str, host: str,
                                                   allowed: bool) -> None:
    rules = ApiSettings(host=bound, api_key="k", allowed_hosts=("llm.home.arpa",))
    assert host_allowed(rules, host) is allowed
