"""agent_client against small fakes of the ElizaOS servers it must also work with."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from paradyze import agent_client
from paradyze.errors import AgentStartFailed, AgentUnreachable, BadRequest

AGENT_ID = "0a1b2c3d-0000-4000-8000-00000000abcd"
Route = Callable[[dict[str, Any]], tuple[int, Any]]


class FakeServer:
    """A 127.0.0.1 HTTP server answering from a table of (method, path regex) -> handler."""

    def __init__(self, routes: dict[tuple[str, str], Route], port: int = 0) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.calls.append((method, self.path, body))
                for (verb, pattern), route in routes.items():
                    match = re.fullmatch(pattern, self.path)
                    if verb == method and match:
                        status, payload = route({"body": body, **match.groupdict()})
                        break
                else:
                    status, payload = 404, "Cannot find that"  # Express's HTML-ish 404
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._any("GET")

            def do_POST(self) -> None:
                self._any("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self, method: str) -> list[str]:
        return [path for verb, path, _ in self.calls if verb == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[dict[tuple[str, str], Route]], FakeServer]]:
    servers: list[FakeServer] = []

    def start(routes: dict[tuple[str, str], Route]) -> FakeServer:
        servers.append(FakeServer(routes))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def agents_list(_: dict[str, Any]) -> tuple[int, Any]:
    return 200, {"success": True, "data": {"agents": [{"id": AGENT_ID, "name": "Ada"}]}}


def new_session(request: dict[str, Any]) -> tuple[int, Any]:
    body = request["body"]
    if body["agentId"] != AGENT_ID:
        return 404, {"error": "Agent not found"}
    uuid.UUID(body["userId"])  # the real server refuses anything else
    return 201, {"sessionId": str(uuid.uuid4()), "agentId": AGENT_ID}


# --- health ---------------------------------------------------------------------------------------


def test_nothing_listening_is_not_healthy_and_times_out() -> None:
    url = closed_port_url()
    assert agent_client.is_healthy(url) is False
    started = time.monotonic()
    with pytest.raises(AgentStartFailed, match="not healthy within"):
        agent_client.wait_healthy(url, 0.3)
    assert time.monotonic() - started < 5


def test_a_dead_process_stops_the_wait_at_once() -> None:
    with pytest.raises(AgentStartFailed, match="exited"):
        agent_client.wait_healthy(closed_port_url(), 60, is_alive=lambda: False)


def test_health_uses_the_configured_path_and_needs_2xx(serve: Any) -> None:
    ok = serve({("GET", "/api/server/health"): lambda _: (200, {"status": "OK"})})
    agent_client.wait_healthy(ok.url, 2)
    failing = serve({("GET", "/api/server/health"): lambda _: (503, {"status": "no"})})
    assert agent_client.is_healthy(failing.url) is False


# --- sending --------------------------------------------------------------------------------------


def test_a_name_is_resolved_and_one_session_serves_a_users_messages(
    serve: Any,
) -> None:
    def reply(request: dict[str, Any]) -> tuple[int, Any]:
        body = request["body"]
        assert body["transport"] == "http"
        return 201, {
            "success": True,
            "userMessage": {"id": "m1"},
            "agentResponse": {"text": f"echo {body['content']}", "actions": ["REPLY"]},
        }

    fake = serve(
        {
            ("GET", "/api/agents"): agents_list,
            ("POST", "/api/messaging/sessions"): new_session,
            ("POST", "/api/messaging/sessions/(?P<sid>[^/]+)/messages"): reply,
        }
    )
    first = agent_client.send_message(fake.url, "ada", "one", "user-42")
    second = agent_client.send_message(fake.url, "ada", "two", "user-42")
    assert [r["text"] for r in first + second] == ["echo one", "echo two"]
    assert fake.paths("POST").count("/api/messaging/sessions") == 1


def test_an_agent_that_ignores_the_message_gives_no_replies(serve: Any) -> None:
    fake = serve(
        {
            ("POST", "/api/messaging/sessions"): new_session,
            ("POST", "/api/messaging/sessions/[^/]+/messages"): lambda _: (
                201,
                {"success": True, "userMessage": {"id": "m"}, "agentResponse": None},
            ),
        }
    )
    assert agent_client.send_message(fake.url, AGENT_ID, "hi", str(uuid.uuid4())) == []


def test_a_lost_session_is_recreated_once(serve: Any) -> None:
    known: set[str] = set()

    def create(request: dict[str, Any]) -> tuple[int, Any]:
        status, body = new_session(request)
        known.add(body["sessionId"])
        return status, body

    def reply(request: dict[str, Any]) -> tuple[int, Any]:
        if request["sid"] not in known:
            return 404, {"error": "Session not found"}
        return 201, {"success": True, "agentResponse": {"text": "back again"}}

    fake = serve(
        {
            ("POST", "/api/messaging/sessions"): create,
            ("POST", "/api/messaging/sessions/(?P<sid>[^/]+)/messages"): reply,
        }
    )
    user = str(uuid.uuid4())
    agent_client.send_message(fake.url, AGENT_ID, "hello", user)
    known.clear()  # the agent restarted and forgot every session
    replies = agent_client.send_message(fake.url, AGENT_ID, "still there?", user)
    assert [r["text"] for r in replies] == ["back again"]
    assert fake.paths("POST").count("/api/messaging/sessions") == 2


def test_a_server_without_the_sync_transport_is_polled_for_the_reply(
    serve: Any,
) -> None:
    history: list[dict[str, Any]] = []

    def take(request: dict[str, Any]) -> tuple[int, Any]:
        history.insert(0, {"id": "u1", "content": request["body"]["content"], "isAgent": False})
        # The reply lands a little later, as it would over Socket.IO.
        threading.Timer(
            0.3,
            lambda: history.insert(0, {"id": "a1", "content": "late reply", "isAgent": True}),
        ).start()
        return 201, {"success": True, "userMessage": {"id": "u1"}}

    fake = serve(
        {
            ("POST", "/api/messaging/sessions"): new_session,
            ("POST", "/api/messaging/sessions/[^/]+/messages"): take,
            ("GET", "/api/messaging/sessions/[^/]+/messages"): lambda _: (
                200,
                {"messages": list(history)},
            ),
        }
    )
    replies = agent_client.send_message(fake.url, AGENT_ID, "hi", str(uuid.uuid4()), 10)
    assert [r["text"] for r in replies] == ["late reply"]


def test_an_elizaos_0x_server_gets_the_classic_endpoint(serve: Any) -> None:
    def classic(request: dict[str, Any]) -> tuple[int, Any]:
        assert request["body"]["userId"] == "user-7"
        return 200, [{"text": "from 0.x", "user": "Ada"}, {"action": "NONE"}]

    fake = serve({("POST", "/Ada/message"): classic})
    replies = agent_client.send_message(fake.url, "Ada", "hi", "user-7")
    assert replies == [{"text": "from 0.x", "user": "Ada"}]
    # Once known, the server is not asked for sessions again.
    agent_client.send_message(fake.url, "Ada", "again", "user-7")
    assert fake.paths("POST") == ["/Ada/message", "/Ada/message"]


def test_a_port_reused_by_a_1x_server_is_found_again(serve: Any) -> None:
    old = serve({("POST", "/Ada/message"): lambda _: (200, [{"text": "0.x"}])})
    agent_client.send_message(old.url, "Ada", "hi", "u")
    port = old.server.server_port
    old.close()
    routes: dict[tuple[str, str], Route] = {
        ("GET", "/api/agents"): agents_list,
        ("POST", "/api/messaging/sessions"): new_session,
        ("POST", "/api/messaging/sessions/[^/]+/messages"): lambda _: (
            201,
            {"agentResponse": {"text": "1.x"}},
        ),
    }
    new = FakeServer(routes, port=port)
    try:
        assert agent_client.send_message(new.url, "Ada", "hi", "u") == [{"text": "1.x"}]
    finally:
        new.close()


# --- failures -------------------------------------------------------------------------------------


def test_nothing_listening_is_unreachable_with_its_cause() -> None:
    with pytest.raises(AgentUnreachable) as caught:
        agent_client.send_message(closed_port_url(), AGENT_ID, "hi", "u")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_a_5xx_is_unreachable(serve: Any) -> None:
    fake = serve(
        {
            ("POST", "/api/messaging/sessions"): new_session,
            ("POST", "/api/messaging/sessions/[^/]+/messages"): lambda _: (
                500,
                {"success": False, "error": "Failed to process message in sync mode"},
            ),
        }
    )
    with pytest.raises(AgentUnreachable, match="HTTP 500"):
        agent_client.send_message(fake.url, AGENT_ID, "hi", "u")


def test_a_slow_agent_times_out_as_unreachable(serve: Any) -> None:
    def slow(_: dict[str, Any]) -> tuple[int, Any]:
        time.sleep(1)
        return 201, {"agentResponse": {"text": "too late"}}

    fake = serve(
        {
            ("POST", "/api/messaging/sessions"): new_session,
            ("POST", "/api/messaging/sessions/[^/]+/messages"): slow,
        }
    )
    with pytest.raises(AgentUnreachable) as caught:
        agent_client.send_message(fake.url, AGENT_ID, "hi", "u", timeout=0.3)
    assert isinstance(caught.value.__cause__, requests.Timeout)


def test_an_unknown_agent_is_unreachable_not_a_fallback(serve: Any) -> None:
    fake = serve({("POST", "/api/messaging/sessions"): new_session})
    with pytest.raises(AgentUnreachable, match="does not run agent"):
        agent_client.send_message(fake.url, str(uuid.uuid4()), "hi", "u")
    assert not any(path.endswith("/message") for path in fake.paths("POST"))


def test_a_rejected_message_is_a_bad_request(serve: Any) -> None:
    fake = serve(
        {
            ("POST", "/api/messaging/sessions"): new_session,
            ("POST", "/api/messaging/sessions/[^/]+/messages"): lambda _: (
                400,
                {"error": "Content exceeds maximum length of 4000 characters"},
            ),
        }
    )
    with pytest.raises(BadRequest, match="4000"):
        agent_client.send_message(fake.url, AGENT_ID, "x" * 5000, "u")


def test_agent_info_needs_an_agent(serve: Any) -> None:
    fake = serve({("GET", "/api/agents"): agents_list})
    assert agent_client.agent_info(fake.url)["id"] == AGENT_ID
    empty = serve(
        {
            ("GET", "/api/agents"): lambda _: (
                200,
                {"success": True, "data": {"agents": []}},
            )
        }
    )
    with pytest.raises(AgentUnreachable, match="lists no agent"):
        agent_client.agent_info(empty.url)
