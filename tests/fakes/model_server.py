"""A fake OpenAI-compatible model server: deterministic answers, and every prompt recorded.

ElizaOS's `@elizaos/plugin-openai` 1.6.0 calls, under `OPENAI_BASE_URL`:
- `GET /models` once at start (its key check);
- `POST /responses` for TEXT_SMALL and TEXT_LARGE (the AI SDK's default OpenAI model is the
  Responses API), streamed (`"stream": true`, server-sent events) or not;
- `POST /embeddings` with `{"model", "input"}`, expecting `OPENAI_EMBEDDING_DIMENSIONS` numbers
  (1536 unless set).
`POST /chat/completions` (streamed or not) is answered too, for clients that use it.

Use:

    with FakeModelServer() as model:                # env: OPENAI_BASE_URL=model.base_url
        model.reply("Hello!")                        # what the agent answers from now on
        model.reply("", actions=["IGNORE"])          # the agent chooses not to answer
        model.fail()                                 # the next text request gets a 400 error
        ... talk to the agent ...
        assert any("the sky is green" in p for p in model.prompts)

What a text request gets is, in order: the first of `model.script(fn)`'s functions that returns a
string for the prompt, else the reply set by `reply()`: ElizaOS's message-handler XML
(`<response><thought/><actions/><providers/><text/></response>`), which the bootstrap plugin
parses. Wire formats follow OpenAI's (ids, `usage`, `finish_reason`, SSE events ending in
`response.completed` or `data: [DONE]`). `python -m tests.fakes.model_server` serves one by hand and
prints its OPENAI_BASE_URL.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from flask import Flask, Response, jsonify, request

from tests.fakes.server import LocalApi

Script = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Completion:
    """One text request: which endpoint, which model, the prompt as one string, and the answer given."""

    path: str
    model: str
    prompt: str
    answer: str | None  # None: it was answered with an error (fail())


def eliza_response(text: str, *, actions: list[str] | tuple[str, ...] = ("REPLY",), thought: str = "Answering.",
                   providers: list[str] | tuple[str, ...] = ()) -> str:
    """The XML ElizaOS's message handler asks the model for (bootstrap's messageHandlerTemplate)."""
    return ("<response>\n"
            f"  <thought>{escape(thought)}</thought>\n"
            f"  <actions>{escape(','.join(actions))}</actions>\n"
            f"  <providers>{escape(','.join(providers))}</providers>\n"
            f"  <text>{escape(text)}</text>\n"
            "</response>")


class FakeModelServer(LocalApi):
    """An OpenAI-compatible API on 127.0.0.1 (or `host`); `base_url` ends in /v1, as OPENAI_BASE_URL expects."""

    def __init__(self, *, dimensions: int = 1536, host: str = "127.0.0.1") -> None:
        self.dimensions = dimensions
        self.completions: list[Completion] = []
        self.embedded: list[str] = []
        self._scripts: list[Script] = []
        self._answer = eliza_response("Hello from the fake model.")
        self._failures = 0
        self._lock = threading.Lock()
        super().__init__(host)

    @property
    def base_url(self) -> str:
        return f"{self.endpoint}/v1"

    @property
    def prompts(self) -> list[str]:
        """Every text prompt received so far, oldest first (system and user text joined)."""
        with self._lock:
            return [c.prompt for c in self.completions]

    def reply(self, text: str, *, actions: list[str] | tuple[str, ...] = ("REPLY",), thought: str = "Answering.",
              providers: list[str] | tuple[str, ...] = ()) -> None:
        """Answer every later text request with ElizaOS's response XML carrying these fields."""
        self._answer = eliza_response(text, actions=actions, thought=thought, providers=providers)

    def script(self, fn: Script) -> None:
        """Answer a prompt with fn(prompt) when it returns a string (raw model output); first added wins."""
        self._scripts.append(fn)

    def fail(self, times: int = 1) -> None:
        """Answer the next `times` text requests with OpenAI's 400 error (the AI SDK does not retry a 400)."""
        with self._lock:
            self._failures += times

    def answer_for(self, prompt: str) -> str:
        for fn in list(self._scripts):
            answer = fn(prompt)
            if answer is not None:
                return answer
        return self._answer

    # --- the API -----------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)

        @app.get("/v1/models")
        def models() -> Response:
            names = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]
            return jsonify({"object": "list", "data": [
                {"id": n, "object": "model", "created": 1_700_000_000, "owned_by": "paradyze-tests"} for n in names]})

        @app.post("/v1/embeddings")
        def embeddings() -> Response:
            body = request.get_json(force=True)
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs or []]
            size = int(body.get("dimensions") or self.dimensions)
            with self._lock:
                self.embedded.extend(texts)
            used = sum(_tokens(t) for t in texts)
            return jsonify({
                "object": "list", "model": body.get("model", "text-embedding-3-small"),
                "data": [{"object": "embedding", "index": i, "embedding": _vector(t, size)}
                         for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": used, "total_tokens": used},
            })

        @app.post("/v1/responses")
        def responses() -> Response:
            body = request.get_json(force=True)
            prompt = _responses_prompt(body)
            answer = self._record("/v1/responses", body, prompt)
            if answer is None:
                return _error()
            created = int(time.time())
            rid, mid = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
            usage = {"input_tokens": _tokens(prompt), "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens": _tokens(answer), "output_tokens_details": {"reasoning_tokens": 0},
                     "total_tokens": _tokens(prompt) + _tokens(answer)}
            item = {"type": "message", "id": mid, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": answer, "annotations": [], "logprobs": []}]}
            done = {"id": rid, "object": "response", "created_at": created, "status": "completed",
                    "model": body.get("model"), "output": [item], "usage": usage, "error": None,
                    "incomplete_details": None}
            if not body.get("stream"):
                return jsonify(done)
            head = {**done, "status": "in_progress", "output": [], "usage": None}
            part = {"type": "output_text", "text": "", "annotations": []}
            events: list[tuple[str, dict[str, Any]]] = [
                ("response.created", {"response": head}),
                ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress",
                                                                             "content": []}}),
                ("response.content_part.added", {"item_id": mid, "output_index": 0, "content_index": 0, "part": part}),
                *[("response.output_text.delta", {"item_id": mid, "output_index": 0, "content_index": 0,
                                                  "delta": piece, "logprobs": []}) for piece in _pieces(answer)],
                ("response.output_text.done", {"item_id": mid, "output_index": 0, "content_index": 0, "text": answer}),
                ("response.content_part.done", {"item_id": mid, "output_index": 0, "content_index": 0,
                                                 "part": {**part, "text": answer}}),
                ("response.output_item.done", {"output_index": 0, "item": item}),
                ("response.completed", {"response": done}),
            ]
            return _sse(f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': n, **data})}\n\n"
                        for n, (name, data) in enumerate(events))

        @app.post("/v1/chat/completions")
        def chat_completions() -> Response:
            body = request.get_json(force=True)
            prompt = "\n".join(_text(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict))
            answer = self._record("/v1/chat/completions", body, prompt)
            if answer is None:
                return _error()
            cid, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body.get("model")
            usage = {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(answer),
                     "total_tokens": _tokens(prompt) + _tokens(answer)}
            if not body.get("stream"):
                return jsonify({"id": cid, "object": "chat.completion", "created": created, "model": model,
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer,
                                                                     "refusal": None},
                                             "logprobs": None, "finish_reason": "stop"}],
                                "usage": usage})

            def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
                data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
                return f"data: {json.dumps(data)}\n\n"

            with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return _sse([chunk({"role": "assistant", "content": ""}, None),
                         *[chunk({"content": piece}, None) for piece in _pieces(answer)],
                         chunk({}, "stop", **({"usage": usage} if with_usage else {})),
                         "data: [DONE]\n\n"])

        return app

    def _record(self, path: str, body: dict[str, Any], prompt: str) -> str | None:
        """Record the request; its answer, or None when it must fail."""
        with self._lock:
            failing = self._failures > 0
            self._failures -= failing
        answer = None if failing else self.answer_for(prompt)
        with self._lock:
            self.completions.append(Completion(path=path, model=str(body.get("model")), prompt=prompt,
                                               answer=answer))
        return answer


def _error() -> Response:
    response = jsonify({"error": {"message": "injected failure", "type": "invalid_request_error", "param": None,
                                  "code": "injected_failure"}})
    response.status_code = 400
    return response


def _responses_prompt(body: dict[str, Any]) -> str:
    parts = [str(body["instructions"])] if body.get("instructions") else []
    items = body.get("input")
    if isinstance(items, str):
        parts.append(items)
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            parts.append(_text(item.get("content")))
    return "\n".join(p for p in parts if p)


def _text(content: Any) -> str:
    """The text of a message's content: a string, or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def _vector(text: str, size: int) -> list[float]:
    """A unit vector derived from the text: the same text always embeds the same."""
    seed = hashlib.sha256(text.encode()).digest()
    raw = [((seed[i % 32] ^ (i * 131 % 251)) - 127.5) for i in range(size)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _sse(chunks: Iterator[str] | list[str]) -> Response:
    return Response(iter(chunks), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


def main() -> None:
    """Serve on a free port of 127.0.0.1 until Ctrl-C, printing the base URL to give agents."""
    server = FakeModelServer()
    print(f"OPENAI_BASE_URL={server.base_url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
