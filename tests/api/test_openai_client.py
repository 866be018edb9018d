"""The official ``openai`` package against the local API, on the real bundled model."""

from __future__ import annotations

import json
import math

import httpx
import openai
import pytest
from api_support import LiveApi

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_lists_the_installed_models(api: LiveApi) -> None:
    client = api.client()
    ids = [m.id for m in client.models.list()]
    assert ids == [api.model_id]
    model = client.models.retrieve(api.model_id)
    assert model.id == api.model_id and model.object == "model"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_chat_completion_answers_with_usage(api: LiveApi) -> None:
    reply = api.client().chat.completions.create(
        model=api.model_id, messages=QUESTION, max_tokens=24, temperature=0, seed=1)
    assert reply.object == "chat.completion" and reply.model == api.model_id
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_max_tokens_ends_with_length(api: LiveApi) -> None:
    reply = api.client().chat.completions.create(
        model=api.model_id, messages=[{"role": "user", "content": "Tell me a long story."}],
        max_completion_tokens=3, temperature=0)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_content_parts_and_system_messages_are_read(api: LiveApi) -> None:
    def ask(messages: list[dict[str, object]]) -> tuple[str | None, int | None]:
        reply = api.client().chat.completions.create(
            model=api.model_id, max_tokens=8, temperature=0, messages=messages)  # type: ignore[arg-type]
        return reply.choices[0].message.content, reply.usage and reply.usage.prompt_tokens

    system = {"role": "system", "content": "Answer briefly, in the voice of a lighthouse keeper."}
    parts = ask([system, {"role": "user", "content": [{"type": "text", "text": "Hello "},
                                                      {"type": "text", "text": "there"}]}])
    whole = ask([system, {"role": "user", "content": "Hello there"}])
    assert parts[0] and parts == whole, "the parts are read as the one text they make"
    terse = ask([{"role": "system", "content": "Answer."},
                 {"role": "user", "content": "Hello there"}])
    assert parts[1] is not None and terse[1] is not None
    assert parts[1] > terse[1], "the system message is in the prompt"


def test_streaming_chat_matches_the_whole_reply(api: LiveApi) -> None:
    client = api.client()
    args = {"model": api.model_id, "messages": QUESTION, "max_tokens": 24,
            "temperature": 0, "seed": 3}
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(
        stream=True, stream_options={"include_usage": True}, **args))  # type: ignore[call-overload]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert text.strip() == whole.choices[0].message.content
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage(api: LiveApi) -> None:
    chunks = list(api.client().chat.completions.create(
        model=api.model_id, messages=QUESTION, max_tokens=6, stream=True))
    assert all(c.usage is None for c in chunks) and chunks[-1].choices


def test_json_schema_reply_parses_and_validates(api: LiveApi) -> None:
    schema = {"type": "object",
              "properties": {"city": {"type": "string", "maxLength": 24},
                             "population": {"type": "integer"},
                             "capital": {"type": "boolean"}},
              "required": ["city", "population", "capital"],
              "additionalProperties": False}
    reply = api.client().chat.completions.create(
        model=api.model_id, max_tokens=120, temperature=0.8, seed=5,
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "city", "schema": schema, "strict": True}})
    data = json.loads(reply.choices[0].message.content or "")
    assert set(data) == {"city", "population", "capital"}
    assert isinstance(data["city"], str) and len(data["city"]) <= 24
    assert isinstance(data["population"], int) and isinstance(data["capital"], bool)


def test_json_object_reply_parses(api: LiveApi) -> None:
    reply = api.client().chat.completions.create(
        model=api.model_id, max_tokens=200, temperature=0,
        messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
        response_format={"type": "json_object"})
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_the_same_seed_gives_the_same_reply(api: LiveApi) -> None:
    client = api.client()

    def ask(seed: int) -> str:
        reply = client.chat.completions.create(
            model=api.model_id, messages=[{"role": "user", "content": "Write a poem."}],
            max_tokens=24, temperature=1.0, seed=seed)
        return reply.choices[0].message.content or ""

    first = ask(42)
    assert ask(42) == first
    assert len({first, ask(7), ask(1234)}) > 1, "the seed changes the sampling"


def test_stop_strings_end_the_reply(api: LiveApi) -> None:
    client = api.client()
    args = {"model": api.model_id, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 24,
            "temperature": 0}
    free = client.completions.create(**args).choices[0].text  # type: ignore[call-overload]
    assert " 7" in free, "the model counts on (the stop below must matter)"
    stopped = client.completions.create(stop=[" 7"], **args)  # type: ignore[call-overload]
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].text == free[:free.index(" 7")]


def test_text_completion_streaming_and_not(api: LiveApi) -> None:
    client = api.client()
    whole = client.completions.create(model=api.model_id, prompt="The capital of France is",
                                      max_tokens=8, temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    assert whole.usage is not None and whole.usage.completion_tokens <= 8
    parts = list(client.completions.create(model=api.model_id, stream=True, max_tokens=8,
                                           prompt="The capital of France is", temperature=0))
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text
    assert parts[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_unknown_model_is_404_in_openai_shape(api: LiveApi) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        api.client().chat.completions.create(model="gpt-4o", messages=QUESTION)
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found"
    assert "gpt-4o" in body["message"] and body["type"] == "invalid_request_error"


def test_prompt_longer_than_the_context_is_400_with_the_numbers(api: LiveApi) -> None:
    client = api.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=api.model_id, messages=[{"role": "user", "content": "word " * 4000}])
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "context_length_exceeded"
    assert "2048" in body["message"], body["message"]
    with pytest.raises(openai.BadRequestError) as raw:
        client.completions.create(model=api.model_id, prompt="word " * 4000)
    assert "2048" in raw.value.body["message"]  # type: ignore[index]
    # The worker is free afterwards.
    assert client.chat.completions.create(model=api.model_id, messages=QUESTION,
                                          max_tokens=2).choices


@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
])
def test_what_is_not_supported_is_a_clear_400(api: LiveApi, extra: dict[str, object],
                                               param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api.client().chat.completions.create(model=api.model_id, messages=QUESTION,
                                             **extra)  # type: ignore[call-overload]
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param and body["message"]


def test_logprobs_are_the_sampled_tokens_and_their_alternatives(api: LiveApi) -> None:
    client = api.client()
    args = {"model": api.model_id, "messages": QUESTION, "max_tokens": 8,
            "temperature": 0, "logprobs": True, "top_logprobs": 3}
    reply = client.chat.completions.create(**args)  # type: ignore[call-overload]
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == reply.usage.completion_tokens  # type: ignore[union-attr]
    assert "".join(t.token for t in content).strip() == reply.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        assert bytes(token.bytes or []).decode("utf-8", "replace") == token.token
        alternatives = [t.logprob for t in token.top_logprobs]
        assert alternatives == sorted(alternatives, reverse=True)
        # Greedy decoding takes the likeliest token each time.
        assert token.top_logprobs[0].token == token.token
        assert abs(token.top_logprobs[0].logprob - token.logprob) < 1e-9
    streamed = list(client.chat.completions.create(stream=True, **args))  # type: ignore[call-overload]
    tokens = [t for c in streamed if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.content or []]
    assert [t.token for t in tokens] == [t.token for t in content]
    plain = client.chat.completions.create(model=api.model_id, messages=QUESTION,
                                           max_tokens=2)
    assert plain.choices[0].logprobs is None


def test_embeddings_are_unit_vectors_that_tell_texts_apart(api: LiveApi) -> None:
    client = api.client()
    texts = ["The cat sat on the mat.", "Stock markets fell sharply today.",
             "The cat sat on the mat."]
    answer = client.embeddings.create(model=api.model_id, input=texts)
    assert answer.model == api.model_id and [d.index for d in answer.data] == [0, 1, 2]
    vectors = [d.embedding for d in answer.data]
    assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) == 576  # SmolLM2-135M
    for vector in vectors:
        assert abs(math.sqrt(sum(x * x for x in vector)) - 1.0) < 1e-4
    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))  # unit vectors

    assert cosine(vectors[0], vectors[2]) > 0.9999, "the same text, the same vector"
    assert cosine(vectors[0], vectors[1]) < 0.99, "different texts, different vectors"
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0
    # The openai package asked for base64; plain numbers are the same vectors.
    floats = httpx.post(f"{api.base_url}/embeddings", timeout=300, json={
        "model": api.model_id, "input": texts[0], "encoding_format": "float"}).json()
    assert cosine(floats["data"][0]["embedding"], vectors[0]) > 0.9999
    # One string works too, and the chat model is still there for chats afterwards.
    single = client.embeddings.create(model=api.model_id, input="The cat sat on the mat.")
    assert cosine(single.data[0].embedding, vectors[0]) > 0.9999
    assert client.chat.completions.create(model=api.model_id, messages=QUESTION,
                                          max_tokens=2).choices


@pytest.mark.parametrize(("given", "param"), [([1, 2, 3], "input"), ([], "input"),
                                              (["ok", ""], "input")])
def test_embeddings_of_what_cannot_be_embedded_are_a_clear_400(
        api: LiveApi, given: object, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        api.client().embeddings.create(model=api.model_id, input=given)  # type: ignore[arg-type]
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param and body["message"]
