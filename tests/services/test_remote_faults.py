"""A remote server that fails says exactly how: checked against a misbehaving loopback
server (and a port where nothing listens), through the real ``openai`` client."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from openai_fault_server import MODEL, REPLY_PIECES, FaultServer

from llamadesk.core.connections import Connection, RemoteSettings
from llamadesk.core.conversation import FinishReason, Message, Role, SamplingParams
from llamadesk.core.settings import AppSettings
from llamadesk.services.backend import RemoteTarget
from llamadesk.services.engine import EngineError, GenerationRequest
from llamadesk.services.remote import CheckStatus, check_connection
from llamadesk.services.remote_engine import RemoteEngine
from llamadesk.services.resolver import make_resolver

QUICK = RemoteSettings(connect_timeout_s=2.0, read_timeout_s=0.5, max_retries=0)
PATIENT = RemoteSettings(connect_timeout_s=2.0, read_timeout_s=300.0, max_retries=0)
QUESTION = Message(id=1, conversation_id=1, parent_id=None, role=Role.USER,
                   content="Say hello.", created_at=0.0)
REQUEST = GenerationRequest((QUESTION,), system_prompt="Be brief.",
                            params=SamplingParams(temperature=0.2, top_k=7, max_tokens=30,
                                                  seed=5))


def engine(server: FaultServer, settings: RemoteSettings = QUICK, model: str = MODEL,
           key: str | None = None) -> RemoteEngine:
    return RemoteEngine(RemoteTarget(Connection("faulty", server.url), model, settings,
                                     api_key=lambda: key))


def test_a_good_server_lists_its_models(fault_server: FaultServer) -> None:
    result = check_connection(Connection("faulty", fault_server.url), None, QUICK)
    assert result.ok and result.models == (MODEL,)
    assert MODEL in result.message
    assert engine(fault_server).list_models() == (f"faulty/{MODEL}",)


@pytest.mark.parametrize(("key", "status"), [(None, CheckStatus.UNAUTHORIZED),
                                             ("wrong", CheckStatus.UNAUTHORIZED),
                                             ("sk-right", CheckStatus.OK)])
def test_a_server_that_wants_a_key(fault_server: FaultServer, key: str | None,
                                   status: CheckStatus) -> None:
    fault_server.set(api_key="sk-right")
    result = check_connection(Connection("faulty", fault_server.url), key, QUICK)
    assert result.status == status
    if status == CheckStatus.UNAUTHORIZED:
        assert "401" in result.message and "key" in result.message
        assert "sk-right" not in result.message and (key or "") not in result.message.split()


def test_an_address_without_the_api_is_not_found(fault_server: FaultServer) -> None:
    url = fault_server.url.removesuffix("/v1") + "/api"
    result = check_connection(Connection("faulty", url), None, QUICK)
    assert result.status == CheckStatus.NOT_FOUND and "404" in result.message


def test_an_answer_that_is_not_json_is_not_compatible(fault_server: FaultServer) -> None:
    fault_server.set("not-json")
    result = check_connection(Connection("faulty", fault_server.url), None, QUICK)
    assert result.status == CheckStatus.NOT_COMPATIBLE and "/v1" in result.message


def test_a_hung_server_times_out_and_is_retried_only_before_answering(
        fault_server: FaultServer) -> None:
    fault_server.set("hang")
    settings = RemoteSettings(connect_timeout_s=2.0, read_timeout_s=0.3, max_retries=1)
    result = check_connection(Connection("faulty", fault_server.url), None, settings)
    assert result.status == CheckStatus.TIMEOUT and "did not answer in time" in result.message
    assert len(fault_server.state.requests) == 2, "one retry of a request that got no answer"


def test_nothing_listening_is_refused(refusing_port: int) -> None:
    url = f"http://127.0.0.1:{refusing_port}/v1"
    result = check_connection(Connection("gone", url), None, QUICK)
    assert result.status == CheckStatus.REFUSED and "refused" in result.message


def test_https_to_a_plain_server_is_a_tls_error(fault_server: FaultServer) -> None:
    url = fault_server.url.replace("http://", "https://")
    result = check_connection(Connection("faulty", url), None, QUICK)
    assert result.status == CheckStatus.TLS, result.message


def test_a_reply_streams_with_the_servers_usage_and_the_openai_fields(
        fault_server: FaultServer) -> None:
    pieces: list[str] = []
    result = engine(fault_server).generate(REQUEST, pieces.append, threading.Event())
    assert "".join(pieces) == "".join(REPLY_PIECES) == result.text
    assert result.model_id == f"faulty/{MODEL}"
    assert result.stats.finish_reason == FinishReason.STOP
    assert (result.stats.prompt_tokens, result.stats.completion_tokens) == (21, 5)
    body = fault_server.state.requests[-1].body
    assert body is not None
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Say hello."}]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 30, 5)
    assert body["top_k"] == 7 and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_an_unknown_model_fails_before_any_text(fault_server: FaultServer) -> None:
    with pytest.raises(EngineError, match=r"404.*does not exist"):
        engine(fault_server, model="nope").generate(REQUEST, lambda _t: None,
                                                    threading.Event())


@pytest.mark.parametrize(("mode", "reason"), [
    ("cut", "closed the connection in the middle of the reply"),
    ("stall", "sent nothing for 0.5 s"),
    ("error-event", "CUDA out of memory"),
])
def test_a_reply_broken_off_keeps_its_text_marked_interrupted(
        fault_server: FaultServer, mode: str, reason: str) -> None:
    fault_server.set(mode)
    result = engine(fault_server).generate(REQUEST, lambda _t: None, threading.Event())
    assert result.text == "Hello from"
    assert result.stats.finish_reason == FinishReason.INTERRUPTED
    assert result.stats.finish_detail is not None and reason in result.stats.finish_detail
    chats = [r for r in fault_server.state.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 1, "a request that had started streaming is never retried"


def test_a_sampling_field_the_server_refuses_is_left_out_and_reported(
        fault_server: FaultServer) -> None:
    fault_server.set("strict")
    pieces: list[str] = []
    result = engine(fault_server).generate(REQUEST, pieces.append, threading.Event())
    assert "".join(pieces) == "".join(REPLY_PIECES) == result.text
    assert result.stats.finish_reason == FinishReason.STOP
    assert result.stats.finish_detail == ("faulty does not accept top_k, min_p, "
                                          "repeat_penalty; written without them")
    first, second = (r.body for r in fault_server.state.requests[-2:])
    assert first is not None and second is not None
    assert first["top_k"] == 7, "asked with them first"
    assert not {"top_k", "min_p", "repeat_penalty"} & set(second), "then without them"
    assert (second["temperature"], second["max_tokens"]) == (0.2, 30), "the rest is kept"


def test_a_hung_server_fails_the_reply_with_a_timeout(fault_server: FaultServer) -> None:
    fault_server.set("hang")
    with pytest.raises(EngineError, match="did not answer in time"):
        engine(fault_server).generate(REQUEST, lambda _t: None, threading.Event())


def test_stop_closes_a_stalled_stream_at_once(fault_server: FaultServer) -> None:
    """The server keeps the stream open and silent, with a read timeout of five minutes:
    only shutting the socket down can end the read."""
    fault_server.set("stall")
    started, cancel = threading.Event(), threading.Event()
    results: list[object] = []
    pieces: list[str] = []

    def on_text(text: str) -> None:
        pieces.append(text)
        if len(pieces) == 2:  # all the server sends before it falls silent
            started.set()

    def run() -> None:
        results.append(engine(fault_server, PATIENT).generate(REQUEST, on_text, cancel))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30)
    cancel.set()
    thread.join(30)
    assert not thread.is_alive(), "Stop did not end the read of a silent stream"
    (result,) = results
    assert result.stats.finish_reason == FinishReason.STOPPED  # type: ignore[attr-defined]
    assert result.text == "Hello from"  # type: ignore[attr-defined]


def test_the_environments_openai_key_is_never_sent(fault_server: FaultServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-meant-for-someone-else")
    assert check_connection(Connection("faulty", fault_server.url), None, QUICK).ok
    engine(fault_server).generate(REQUEST, lambda _t: None, threading.Event())
    for request in fault_server.state.requests:
        assert "sk-meant-for-someone-else" not in str(request.headers)


def test_a_turned_off_or_unknown_connection_is_an_error_never_a_fallback(
        fault_server: FaultServer, tmp_path: Path) -> None:
    on = Connection("faulty", fault_server.url)
    settings = AppSettings(connections=(on,))
    resolve = make_resolver(lambda: settings)
    spec = resolve(f"faulty/{MODEL}", 1024)
    assert spec.connection is not None and spec.model_id == f"faulty/{MODEL}"
    settings = AppSettings(connections=(Connection("faulty", fault_server.url, False),))
    with pytest.raises(LookupError, match="turned off"):
        resolve(f"faulty/{MODEL}", 1024)
    with pytest.raises(LookupError, match="not installed"):
        resolve(f"elsewhere/{MODEL}", 1024)
    settings = AppSettings(model_id=f"faulty/{MODEL}")  # the default model's connection gone
    with pytest.raises(LookupError):
        resolve(None, 1024)
    assert fault_server.state.requests == [], "resolving a model sends nothing"
