"""The reference agent, run as a real process for every fixture character."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from paradyze.agent_client import AgentClient
from paradyze.errors import AgentStartFailed

USER = "7d9b6f5e-0c1a-4b8e-9f00-000000000001"


@pytest.fixture
def client() -> Iterator[AgentClient]:
    with AgentClient() as made:
        yield made


def example_pairs(character: dict[str, Any]) -> list[tuple[str, str]]:
    """(user text, agent reply) as written in the file, in either ElizaOS shape."""
    pairs = []
    for conversation in character.get("messageExamples", []):
        turns = conversation["examples"] if isinstance(conversation, dict) else conversation
        pairs.append((turns[0]["content"]["text"], turns[1]["content"]["text"]))
    return pairs


def character_lines(character: dict[str, Any]) -> list[str]:
    """Everything the character itself could say, with its name filled in."""
    name = character["name"]
    lines = [
        *character.get("postExamples", []),
        *character.get("bio", []),
        *character.get("lore", []),
        *character.get("templates", {}).values(),
        *(reply for _, reply in example_pairs(character)),
    ]
    return [line.replace("{{name}}", name).replace("{{agentName}}", name) for line in lines]


def in_character(reply: str, character: dict[str, Any]) -> bool:
    said = reply.strip().lower()
    return bool(said) and any(said in line.lower() for line in character_lines(character))


def get_json(agent: Any, path: str) -> tuple[int, Any]:
    response = requests.get(agent.url + path, headers={"X-API-KEY": agent.key}, timeout=5)
    return response.status_code, response.json()


def post(agent: Any, path: str, body: Any = None, raw: bytes | None = None) -> requests.Response:
    headers = {"X-API-KEY": agent.key}
    if raw is not None:
        return requests.post(
            agent.url + path,
            data=raw,
            headers={**headers, "Content-Type": "application/json"},
            timeout=10,
        )
    return requests.post(agent.url + path, json=body, headers=headers, timeout=10)


def agent_id(agent: Any) -> str:
    """ElizaOS's id for the agent (not the platform's)."""
    with AgentClient() as client:
        return str(client.agent_info(agent.url, agent.agent_id)["id"])


def channel_message(agent: Any, channel: str, text: str, transport: str = "http") -> requests.Response:
    return post(
        agent,
        f"/api/messaging/channels/{channel}/messages",
        {
            "author_id": USER,
            "content": text,
            "message_server_id": "00000000-0000-0000-0000-000000000000",
            "transport": transport,
        },
    )


# --- health and agents --------------------------------------------------------------------------


def test_health_answers_ok_with_the_agent(running_agent: Any, client: AgentClient) -> None:
    assert client.is_healthy(running_agent.url, running_agent.agent_id)
    status, body = get_json(running_agent, "/api/server/health")
    assert status == 200
    assert body["status"] == "OK"
    assert body["agentName"] == running_agent.character["name"]
    status, ping = get_json(running_agent, "/api/server/ping")
    assert (status, ping["pong"]) == (200, True)


def test_agents_list_holds_exactly_this_agent(running_agent: Any, client: AgentClient) -> None:
    status, body = get_json(running_agent, "/api/agents")
    assert status == 200 and body["success"] is True
    (listed,) = body["data"]["agents"]
    assert listed["name"] == running_agent.character["name"]
    uuid.UUID(listed["id"])
    if "id" in running_agent.character:
        assert listed["id"] == running_agent.character["id"]
    info = client.agent_info(running_agent.url, running_agent.agent_id)
    assert (info["id"], info["name"]) == (listed["id"], listed["name"])


def test_agent_details_never_show_secrets(running_agent: Any) -> None:
    status, body = get_json(running_agent, f"/api/agents/{agent_id(running_agent)}")
    assert status == 200 and body["success"] is True
    assert body["data"]["name"] == running_agent.character["name"]
    assert "secrets" not in body["data"].get("settings", {})
    secrets = running_agent.character.get("settings", {}).get("secrets", {})
    text = json.dumps(body)
    for value in secrets.values():
        if value:
            assert value not in text
    status, missing = get_json(running_agent, f"/api/agents/{uuid.uuid4()}")
    assert status == 404 and missing["success"] is False


def test_agent_id_is_stable_across_restarts(start_agent: Any, characters: Any) -> None:
    path = next(p for p in characters if "id" not in json.loads(p.read_text()))
    first = start_agent(path)
    first_id = agent_id(first)
    first.stop()
    assert agent_id(start_agent(path)) == first_id


# --- messages -----------------------------------------------------------------------------------


def test_agent_client_gets_the_characters_own_example_replies(running_agent: Any, client: AgentClient) -> None:
    for question, expected in example_pairs(running_agent.character):
        replies = client.send_message(running_agent.url, running_agent.agent_id, question, USER)
        # The agent's thought stays with the agent.
        assert replies == [{"text": expected, "actions": ["REPLY"]}]


def test_agent_client_reply_to_free_text_is_in_character_and_deterministic(
    running_agent: Any, client: AgentClient
) -> None:
    question = "Tell me something about yourself, please."
    (reply,) = client.send_message(running_agent.url, running_agent.agent_id, question, "someone-not-a-uuid")
    assert in_character(reply["text"], running_agent.character), reply
    (again,) = client.send_message(running_agent.url, running_agent.agent_id, question, "another-user")
    assert again["text"] == reply["text"]


def test_sessions_api_answers_synchronously_over_http(
    running_agent: Any,
) -> None:
    ref = agent_id(running_agent)
    created = post(running_agent, "/api/messaging/sessions", {"agentId": ref, "userId": USER})
    assert created.status_code == 201
    session_id = created.json()["sessionId"]
    question, expected = example_pairs(running_agent.character)[0]
    sent = post(
        running_agent,
        f"/api/messaging/sessions/{session_id}/messages",
        {"content": question, "transport": "http"},
    )
    assert sent.status_code == 201
    body = sent.json()
    assert body["success"] is True
    assert body["userMessage"]["content"] == question
    assert body["agentResponse"]["text"] == expected
    status, info = get_json(running_agent, f"/api/messaging/sessions/{session_id}")
    assert (status, info["agentId"], info["userId"]) == (200, ref, USER)


def test_sessions_api_default_transport_puts_the_reply_in_the_history(
    running_agent: Any,
) -> None:
    created = post(
        running_agent,
        "/api/messaging/sessions",
        {"agentId": agent_id(running_agent), "userId": USER},
    )
    session_id = created.json()["sessionId"]
    sent = post(
        running_agent,
        f"/api/messaging/sessions/{session_id}/messages",
        {"content": "hello there"},
    )
    assert sent.status_code == 201 and "agentResponse" not in sent.json()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, history = get_json(running_agent, f"/api/messaging/sessions/{session_id}/messages")
        agent_said = [m["content"] for m in history["messages"] if m["isAgent"]]
        if agent_said:
            break
        time.sleep(0.05)
    assert len(agent_said) == 1 and in_character(agent_said[0], running_agent.character)


def test_channel_messages_answer_synchronously_and_keep_one_conversation(running_agent: Any) -> None:
    channel = str(uuid.uuid4())
    question, expected = example_pairs(running_agent.character)[-1]
    sent = channel_message(running_agent, channel, question)
    assert sent.status_code == 201
    assert sent.json()["userMessage"]["channel_id"] == channel
    assert sent.json()["agentResponse"]["text"] == expected
    channel_message(running_agent, channel, "and another thing")
    status, listed = get_json(running_agent, f"/api/memory/{agent_id(running_agent)}/memories?roomId={channel}")
    assert status == 200
    # Newest first, as ElizaOS lists them: both turns of both exchanges, in this channel only.
    texts = [m["content"]["text"] for m in listed["data"]["memories"]]
    assert len(texts) == 4 and texts[2:] == [expected, question]
    assert channel_message(running_agent, str(uuid.uuid4()), "hi", transport="carrier-pigeon").status_code == 400


def test_the_key_is_required_everywhere_but_the_public_health_checks(running_agent: Any) -> None:
    ref = agent_id(running_agent)
    guarded = [
        ("GET", "/api/server/health"),
        ("GET", "/api/agents"),
        ("GET", f"/api/agents/{ref}"),
        ("GET", f"/api/memory/{ref}/memories"),
        ("POST", "/api/messaging/sessions"),
        ("POST", f"/api/messaging/channels/{uuid.uuid4()}/messages"),
        ("GET", "/no/such/path"),
    ]
    for method, path in guarded:
        for headers in ({}, {"X-API-KEY": "not-the-key"}, {"X-API-KEY": running_agent.key[:-1]}):
            response = requests.request(method, running_agent.url + path, json={}, headers=headers, timeout=5)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"] == "API key required"
    for path in ("/health", "/healthz"):
        assert requests.get(running_agent.url + path, timeout=5).status_code == 200
    assert requests.options(running_agent.url + "/api/agents", timeout=5).status_code == 204


def test_without_a_key_configured_the_agent_is_open_as_elizaos_is(start_agent: Any, characters: Any) -> None:
    agent = start_agent(characters[0], {"ELIZA_SERVER_AUTH_TOKEN": ""})
    assert requests.get(agent.url + "/api/agents", timeout=5).status_code == 200
    assert "ELIZA_SERVER_AUTH_TOKEN is not set" in agent.output()


def test_health_counts_messages_and_last_activity(running_agent: Any, client: AgentClient) -> None:
    _, before = get_json(running_agent, "/api/server/health")
    for _ in range(3):
        client.send_message(running_agent.url, running_agent.agent_id, "how are you?", USER)
    _, after = get_json(running_agent, "/api/server/health")
    assert after["messages"] - before["messages"] == 3
    started = datetime.fromisoformat(before["timestamp"])
    assert datetime.fromisoformat(after["last_activity"]) >= started
    # The platform's idle signal: the agent's newest memory.
    active = client.last_activity(running_agent.url, running_agent.agent_id)
    assert active is not None and active >= started.replace(microsecond=0)


def test_malformed_requests_get_400_and_unknown_paths_404(
    running_agent: Any,
) -> None:
    ref = agent_id(running_agent)
    for path in ("/api/messaging/sessions", f"/api/messaging/channels/{uuid.uuid4()}/messages"):
        bad = post(running_agent, path, raw=b"{not json")
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "BAD_REQUEST"
        assert post(running_agent, path, raw=b"[1, 2]").status_code == 400
    assert (
        post(
            running_agent,
            "/api/messaging/sessions",
            {"agentId": ref, "userId": "not-a-uuid"},
        ).status_code
        == 400
    )
    assert channel_message(running_agent, str(uuid.uuid4()), "").status_code == 400
    session_id = post(running_agent, "/api/messaging/sessions", {"agentId": ref, "userId": USER}).json()["sessionId"]
    too_long = post(
        running_agent,
        f"/api/messaging/sessions/{session_id}/messages",
        {"content": "x" * 4001},
    )
    assert too_long.status_code == 400
    assert (
        post(
            running_agent,
            f"/api/messaging/sessions/{uuid.uuid4()}/messages",
            {"content": "hi"},
        ).status_code
        == 404
    )
    status, body = get_json(running_agent, "/no/such/path")
    assert status == 404 and body["success"] is False
    # The server stays usable after each of these.
    with AgentClient() as client:
        assert client.is_healthy(running_agent.url, running_agent.agent_id)


# --- process behaviour ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_agent_cleanly(start_agent: Any, characters: Any, sig: int) -> None:
    agent = start_agent(characters[0])
    requests.get(agent.url + "/api/server/health", headers={"X-API-KEY": agent.key}, timeout=5)
    assert agent.stop(sig, timeout=5) == 0
    log = agent.output()
    assert "GET /api/server/health 200" in log and "ms" in log
    assert log.rstrip().endswith("stopped")


def test_a_broken_character_file_fails_the_start(start_agent: Any, tmp_path: Any) -> None:
    broken = tmp_path / "broken.character.json"
    broken.write_text("{not json")
    with pytest.raises(AgentStartFailed, match="exited"):
        start_agent(broken, log_path=tmp_path / "agent.log")
    assert "cannot load character" in (tmp_path / "agent.log").read_text()


# --- OpenRouter -----------------------------------------------------------------------------------

FAKE_KEY = "sk-or-test-0123456789abcdef"


class FakeOpenRouter:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that records what it was sent."""

    def __init__(self, status: int = 200, answer: str = "FAKE-LLM says hello") -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                payload = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
                data = json.dumps(payload if status == 200 else {"error": "boom"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/api/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openrouter() -> Iterator[FakeOpenRouter]:
    fake = FakeOpenRouter()
    yield fake
    fake.close()


@pytest.fixture
def eliza_path(characters: Any) -> Any:
    """The 1.x character: it has an id and a system prompt."""
    shaped = [(p, json.loads(p.read_text())) for p in characters]
    return next(p for p, c in shaped if "system" in c and "id" in c)


def test_openrouter_answers_with_the_character_as_system_prompt(
    start_agent: Any, fake_openrouter: FakeOpenRouter, eliza_path: Any, client: AgentClient
) -> None:
    path = eliza_path
    agent = start_agent(
        path,
        {
            "OPENROUTER_API_KEY": FAKE_KEY,
            "OPENROUTER_BASE_URL": fake_openrouter.base_url,
        },
    )
    replies = client.send_message(agent.url, agent.agent_id, "what should I focus on today?", USER)
    assert [r["text"] for r in replies] == ["FAKE-LLM says hello"]

    (sent,) = fake_openrouter.requests
    assert sent["path"] == "/api/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {FAKE_KEY}"
    assert sent["body"]["model"] == "openai/gpt-4o-mini"
    system, *_, user = sent["body"]["messages"]
    assert system["role"] == "system"
    assert agent.character["system"] in system["content"]
    # A bio line, its {{name}} filled in.
    assert "Eliza is warm, precise, and easy to talk to." in system["content"]
    assert user == {"role": "user", "content": "what should I focus on today?"}

    # The second turn of the same conversation carries the first one.
    client.send_message(agent.url, agent.agent_id, "and tomorrow?", USER)
    roles = [m["role"] for m in fake_openrouter.requests[1]["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]

    agent.stop()
    assert FAKE_KEY not in agent.output()


def test_openrouter_failure_falls_back_offline_without_leaking_the_key(
    start_agent: Any, eliza_path: Any, client: AgentClient
) -> None:
    fake = FakeOpenRouter(status=500)
    try:
        path = eliza_path
        agent = start_agent(
            path,
            {
                "OPENROUTER_API_KEY": FAKE_KEY,
                "OPENROUTER_BASE_URL": fake.base_url,
                "OPENROUTER_MODEL": "test/model",
            },
        )
        question, expected = example_pairs(agent.character)[0]
        replies = client.send_message(agent.url, agent.agent_id, question, USER)
        assert [r["text"] for r in replies] == [expected]
        assert fake.requests[0]["body"]["model"] == "test/model"
    finally:
        fake.close()
    agent.stop()
    log = agent.output()
    assert "openrouter failed" in log and "HTTP 500" in log
    assert FAKE_KEY not in log
