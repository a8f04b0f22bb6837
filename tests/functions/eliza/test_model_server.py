"""The fake model server speaks OpenAI's wire format, streamed or not, and records what it was asked."""

from __future__ import annotations

import json

import httpx

from tests.fakes.model_server import FakeModelServer, eliza_response


def events(response: httpx.Response) -> list[dict[str, object]]:
    return [json.loads(line[len("data: "):]) for line in response.text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def test_responses_chat_and_embeddings() -> None:
    with FakeModelServer(dimensions=384) as model:
        model.reply("Hi there.", thought="be brief")
        answer = httpx.post(f"{model.base_url}/responses", json={
            "model": "gpt-4o", "input": [{"role": "system", "content": "You are Ada."},
                                         {"role": "user", "content": [{"type": "input_text", "text": "hello"}]}]})
        assert answer.status_code == 200
        (item,) = answer.json()["output"]
        assert item["content"][0]["text"] == eliza_response("Hi there.", thought="be brief")
        assert answer.json()["usage"]["output_tokens"] > 0

        chat = httpx.post(f"{model.base_url}/chat/completions",
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "again"}]})
        assert chat.json()["choices"][0]["finish_reason"] == "stop"

        vectors = httpx.post(f"{model.base_url}/embeddings", json={"model": "m", "input": ["a", "b", "a"]}).json()
        first, second, third = (d["embedding"] for d in vectors["data"])
        assert len(first) == 384 and first == third and first != second
        assert model.prompts == ["You are Ada.\nhello", "again"]


def test_streams_carry_the_whole_answer() -> None:
    with FakeModelServer() as model:
        model.script(lambda prompt: "streamed words, quite a few of them" if "stream me" in prompt else None)
        responses = httpx.post(f"{model.base_url}/responses",
                               json={"model": "m", "input": "stream me", "stream": True})
        sent = events(responses)
        assert sent[0]["type"] == "response.created" and sent[-1]["type"] == "response.completed"
        assert "".join(str(e["delta"]) for e in sent if e["type"] == "response.output_text.delta") == \
            "streamed words, quite a few of them"
        chat = httpx.post(f"{model.base_url}/chat/completions", json={
            "model": "m", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "stream me"}]})
        chunks = events(chat)
        assert chat.text.rstrip().endswith("data: [DONE]") and "usage" in chunks[-1]
        assert "".join(str(c["choices"][0]["delta"].get("content", "")) for c in chunks) == \
            "streamed words, quite a few of them"


def test_fail_answers_the_next_request_with_an_error() -> None:
    with FakeModelServer() as model:
        model.fail()
        failed = httpx.post(f"{model.base_url}/responses", json={"model": "m", "input": "x"})
        assert failed.status_code == 400 and failed.json()["error"]["type"] == "invalid_request_error"
        assert httpx.post(f"{model.base_url}/responses", json={"model": "m", "input": "x"}).status_code == 200
        assert [c.answer is None for c in model.completions] == [True, False]
