"""AgentClient against a MockTransport that answers as ElizaOS 1.7.2 does (its answers measured on the
real server; tests/functions/eliza/ runs the real one)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from paradyze import agent_keys
from paradyze.agent_client import AgentClient
from paradyze.agent_http import ConnectFailed
from paradyze.errors import AgentFailed, AgentStartFailed, AgentUnreachable, BadRequest

URL = "http://127.0.0.1:3100"
AGENT = str(uuid.uuid4())  # the platform's id: the key derives from it
ELIZA = "5c3cb098-d52d-0b3f-a7e9-7b7fba960c4c"  # ElizaOS's id for the same agent
USER = str(uuid.uuid4())
DEFAULT_SERVER = "00000000-0000-0000-0000-000000000000"
PROCESSING_FAILED = {"success": False, "error": "Failed to process message in HTTP transport"}


class FakeEliza:
    """Routes like ElizaOS's, recording every request; `reply` decides the message route's answer."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.memories: list[dict[str, Any]] = []  # newest first
        self.reply: Callable[[dict[str, Any]], httpx.Response] = lambda body: httpx.Response(201, json={
            "success": True, "userMessage": {"id": str(uuid.uuid4())},
            "agentResponse": {"text": f"echo {body['content']}", "thought": "private", "actions": ["REPLY"],
                              "providers": [], "reasoning": "also private", "simple": True,
                              "responseId": str(uuid.uuid4())}})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("X-API-KEY") != agent_keys.api_key(AGENT):
            return httpx.Response(401, json={"error": "API key required",
                                             "message": "Missing or invalid X-API-KEY header"})
        path = request.url.path
        if path == "/api/server/health":
            return httpx.Response(200, json={"status": "OK"})
        if path == "/api/agents":
            return httpx.Response(200, json={"success": True, "data": {"agents": [{"id": ELIZA, "name": "Ada"}]}})
        if path == "/api/messaging/message-server/current":
            return httpx.Response(200, json={"success": True, "data": {"messageServerId": DEFAULT_SERVER}})
        if path == f"/api/memory/{ELIZA}/memories":
            room = request.url.params.get("roomId")
            listed = [m for m in self.memories if room is None or m["roomId"] == room]
            return httpx.Response(200, json={"success": True, "data": {"memories": listed}})
        if path.startswith("/api/messaging/channels/") and path.endswith("/messages"):
            body = json.loads(request.content)
            self.remember(body["author_id"], path.split("/")[4], {"text": body["content"]})
            return self.reply(body)
        return httpx.Response(404, json={"success": False, "error": {"code": "NOT_FOUND", "message": "no route"}})

    def remember(self, entity: str, room: str, content: dict[str, Any]) -> None:
        self.memories.insert(0, {"id": str(uuid.uuid4()), "entityId": entity, "roomId": room, "content": content,
                                 "createdAt": int(time.time() * 1000)})

    def sent(self, path_end: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(path_end)]


@pytest.fixture
def eliza() -> FakeEliza:
    return FakeEliza()


@pytest.fixture
def client(eliza: FakeEliza) -> Iterator[AgentClient]:
    with AgentClient(transport=httpx.MockTransport(eliza)) as made:
        yield made


def channel_of(request: httpx.Request) -> str:
    return request.url.path.split("/")[4]


# --- the key and health ---------------------------------------------------------------------------


def test_every_call_carries_the_agents_own_key(client: AgentClient, eliza: FakeEliza) -> None:
    assert client.is_healthy(URL, AGENT)
    assert client.agent_info(URL, AGENT)["id"] == ELIZA
    assert client.send_message(URL, AGENT, "hi", USER)
    assert client.last_activity(URL, AGENT) is not None
    assert {r.headers["X-API-KEY"] for r in eliza.requests} == {agent_keys.api_key(AGENT)}
    # Another agent's key is refused, as ElizaOS refuses it.
    other = str(uuid.uuid4())
    assert client.is_healthy(URL, other) is False
    with pytest.raises(AgentUnreachable, match="refused the platform's key"):
        client.send_message(URL, other, "hi", USER, eliza_agent_id=ELIZA)


def test_health_needs_2xx_and_a_dead_process_stops_the_wait() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with AgentClient(transport=httpx.MockTransport(down)) as client:
        assert client.is_healthy(URL, AGENT) is False
        with pytest.raises(AgentStartFailed, match="not healthy within"):
            client.wait_healthy(URL, AGENT, 0.3)
        with pytest.raises(AgentStartFailed, match="exited"):
            client.wait_healthy(URL, AGENT, 60, is_alive=lambda: False)
    with AgentClient(transport=httpx.MockTransport(lambda r: httpx.Response(503, json={"status": "no"}))) as client:
        assert client.is_healthy(URL, AGENT) is False


def test_agent_info_needs_an_agent() -> None:
    empty = httpx.MockTransport(lambda r: httpx.Response(200, json={"success": True, "data": {"agents": []}}))
    with AgentClient(transport=empty) as client, pytest.raises(AgentUnreachable, match="lists no agent"):
        client.agent_info(URL, AGENT)


# --- one conversation per agent and user ------------------------------------------------------------


def test_one_channel_per_agent_and_user_even_across_platform_restarts(eliza: FakeEliza) -> None:
    with AgentClient(transport=httpx.MockTransport(eliza)) as first:
        first.send_message(URL, AGENT, "one", USER, eliza_agent_id=ELIZA)
        first.send_message(URL, AGENT, "two", "not-a-uuid-user")
    with AgentClient(transport=httpx.MockTransport(eliza)) as second:  # a new process, nothing cached
        second.send_message(URL, AGENT, "three", USER, eliza_agent_id=ELIZA)
        second.send_message(URL, AGENT, "four", "not-a-uuid-user", eliza_agent_id=ELIZA)
    one, two, three, four = eliza.sent("/messages")
    assert channel_of(one) == channel_of(three) and channel_of(two) == channel_of(four)
    assert channel_of(one) != channel_of(two)
    body = json.loads(one.content)
    assert body["transport"] == "http" and body["author_id"] == USER and body["content"] == "one"
    assert body["metadata"]["isDm"] is True and body["metadata"]["targetUserId"] == ELIZA
    assert body["message_server_id"] == "00000000-0000-0000-0000-000000000000"
    uuid.UUID(json.loads(two.content)["author_id"])  # ElizaOS accepts nothing else
    # The agent's id was looked up only when the platform did not know it.
    assert len(eliza.sent("/api/agents")) == 1


# --- replies --------------------------------------------------------------------------------------


def test_a_reply_carries_text_actions_and_attachments_never_thought_or_reasoning(
        client: AgentClient, eliza: FakeEliza) -> None:
    assert client.send_message(URL, AGENT, "hi", USER) == [{"text": "echo hi", "actions": ["REPLY"]}]
    picture = {"id": "a1", "url": "https://example.org/cat.png", "contentType": "image", "title": "cat"}
    eliza.reply = lambda body: httpx.Response(201, json={"success": True, "agentResponse": {
        "text": "", "thought": "secret", "actions": ["SEND_IMAGE"], "attachments": [picture], "simple": False}})
    assert client.send_message(URL, AGENT, "a cat?", USER) == [
        {"text": "", "actions": ["SEND_IMAGE"], "attachments": [picture]}]


def test_ignore_is_an_empty_reply_whether_serialised_or_answered_with_a_500(
        client: AgentClient, eliza: FakeEliza) -> None:
    eliza.reply = lambda body: httpx.Response(201, json={"success": True, "agentResponse": {
        "thought": "not for me", "actions": ["IGNORE"], "text": ""}})
    assert client.send_message(URL, AGENT, "first", USER) == []

    def ignore_then_fail_to_serialise(body: dict[str, Any]) -> httpx.Response:
        # What 1.7.2 does: the IGNORE action's result is in the agent's memory, then a 500.
        eliza.remember(ELIZA, eliza.memories[0]["roomId"], {"text": "Executed action: IGNORE",
                                                            "type": "action_result", "actionName": "IGNORE"})
        return httpx.Response(500, json=PROCESSING_FAILED)

    eliza.reply = ignore_then_fail_to_serialise
    assert client.send_message(URL, AGENT, "second", USER) == []


def test_a_stored_message_the_agent_failed_on_is_delivered_not_retried(client: AgentClient, eliza: FakeEliza) -> None:
    eliza.reply = lambda body: httpx.Response(201, json={"success": True, "agentResponse": {
        "thought": "not for me", "actions": ["IGNORE"], "text": ""}})
    client.send_message(URL, AGENT, "ignored earlier", USER)
    eliza.remember(ELIZA, eliza.memories[0]["roomId"], {"text": "", "actions": ["IGNORE"]})
    # Now the model fails: the 500 looks the same, but no IGNORE follows this message.
    eliza.reply = lambda body: httpx.Response(500, json=PROCESSING_FAILED)
    with pytest.raises(AgentFailed, match="failed to reply") as caught:
        client.send_message(URL, AGENT, "this one fails", USER)
    assert not hasattr(caught.value, "retry_after")
    assert len(eliza.sent("/messages")) == 2, "sent once, never again"


def test_failures_before_the_agent_has_the_message_are_unreachable(eliza: FakeEliza) -> None:
    eliza.reply = lambda body: httpx.Response(500, json={"success": False, "error": "Failed to process message"})
    with AgentClient(transport=httpx.MockTransport(eliza)) as client, pytest.raises(AgentUnreachable, match="500"):
        client.send_message(URL, AGENT, "hi", USER, eliza_agent_id=ELIZA)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with AgentClient(transport=httpx.MockTransport(refused)) as client:
        with pytest.raises(AgentUnreachable) as caught:
            client.send_message(URL, AGENT, "hi", USER, eliza_agent_id=ELIZA)
    assert isinstance(caught.value.__cause__, ConnectFailed)
    assert isinstance(caught.value.__cause__.__cause__, httpx.ConnectError)


def test_a_reply_that_never_comes_is_a_failure_not_undelivered(eliza: FakeEliza) -> None:
    def slow(body: dict[str, Any]) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    eliza.reply = slow
    with AgentClient(transport=httpx.MockTransport(eliza)) as client, pytest.raises(AgentFailed, match="within"):
        client.send_message(URL, AGENT, "hi", USER, eliza_agent_id=ELIZA, timeout=5)


def test_a_rejected_message_is_a_bad_request(client: AgentClient, eliza: FakeEliza) -> None:
    eliza.reply = lambda body: httpx.Response(400, json={"success": False, "error": "Content exceeds maximum length"})
    with pytest.raises(BadRequest, match="maximum length"):
        client.send_message(URL, AGENT, "x" * 5000, USER)


def test_a_server_without_the_agent_is_unreachable() -> None:
    gone = httpx.MockTransport(lambda r: httpx.Response(404, text="Cannot GET"))
    with AgentClient(transport=gone) as client, pytest.raises(AgentUnreachable):
        client.send_message(URL, AGENT, "hi", USER)


# --- activity -------------------------------------------------------------------------------------


def test_last_activity_is_the_agents_newest_memory(client: AgentClient, eliza: FakeEliza) -> None:
    assert client.last_activity(URL, AGENT) is None
    eliza.remember("someone-on-discord", str(uuid.uuid4()), {"text": "hello from discord"})
    eliza.memories[0]["createdAt"] = 1_795_790_159_246
    assert client.last_activity(URL, AGENT, ELIZA) == datetime(2026, 11, 27, 14, 35, 59, 246000, tzinfo=UTC)


def test_last_activity_falls_back_to_the_health_heartbeat() -> None:
    def old_agent(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/server/health":
            return httpx.Response(200, json={"status": "OK", "last_activity": "2026-11-27T10:00:00Z"})
        return httpx.Response(404, json={"error": "no route"})

    with AgentClient(transport=httpx.MockTransport(old_agent)) as client:
        assert client.last_activity(URL, AGENT, ELIZA) == datetime(2026, 11, 27, 10, tzinfo=UTC)


# --- connections ----------------------------------------------------------------------------------


def test_calls_reuse_one_connection() -> None:
    ports: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            ports.append(self.client_address[1])
            data = b'{"status": "OK"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with AgentClient() as client:
            for _ in range(5):
                assert client.is_healthy(f"http://127.0.0.1:{server.server_port}", AGENT)
    finally:
        server.shutdown()
        server.server_close()
    assert len(ports) == 5 and len(set(ports)) == 1
