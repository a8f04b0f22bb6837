"""How the platform talks to the real ElizaOS 1.7.2: its key, replies, IGNORE, failures, activity."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from paradyze import http
from paradyze.agent_client import AgentClient
from paradyze.errors import AgentFailed
from tests.fakes.model_server import FakeModelServer
from tests.functions.eliza.elizaos_server import ElizaServer

TIMEOUT = 120.0  # a loaded machine; the fake model answers at once


def user() -> str:
    return str(uuid.uuid4())


def test_elizaos_refuses_calls_without_the_agents_key(eliza: ElizaServer, client: AgentClient) -> None:
    for headers in ({}, {"X-API-KEY": "guess"}):
        assert httpx.get(f"{eliza.url}/api/agents", headers=headers, timeout=10).status_code == 401
    assert client.is_healthy(eliza.url, str(uuid.uuid4())) is False, "another agent's key"
    assert client.is_healthy(eliza.url, eliza.agent_id)
    assert client.agent_info(eliza.url, eliza.agent_id)["name"] == "Ada"


def test_a_reply_carries_text_and_actions_never_the_agents_thought(
        eliza: ElizaServer, model: FakeModelServer, client: AgentClient) -> None:
    model.reply("Pleased to meet you, Zed.", thought="He seems nervous; be kind.")
    replies = client.send_message(eliza.url, eliza.agent_id, "Hello, I am Zed.", user(), timeout=TIMEOUT)
    assert replies == [{"text": "Pleased to meet you, Zed.", "actions": ["REPLY"]}]
    assert any("Hello, I am Zed." in prompt for prompt in model.prompts), "the agent saw the message"


def test_ignore_is_an_empty_reply(eliza: ElizaServer, model: FakeModelServer, client: AgentClient) -> None:
    someone = user()
    model.reply("", actions=["IGNORE"], thought="Not worth answering.")
    # 1.7.2 answers this with a 500 (its reply cannot be serialised); the platform knows better.
    raw = httpx.post(f"{eliza.url}/api/messaging/channels/{uuid.uuid4()}/messages", timeout=TIMEOUT,
                     headers={"X-API-KEY": eliza.key},
                     json={"author_id": someone, "content": "spam spam spam", "transport": "http",
                           "message_server_id": "00000000-0000-0000-0000-000000000000",
                           "metadata": {"isDm": True, "targetUserId": eliza.eliza_id()}})
    assert raw.status_code == 500
    assert client.send_message(eliza.url, eliza.agent_id, "spam spam spam", someone, timeout=TIMEOUT) == []
    # and the conversation goes on
    model.reply("Back to business.")
    assert client.send_message(eliza.url, eliza.agent_id, "ok, a real question", someone,
                               timeout=TIMEOUT)[0]["text"] == "Back to business."


def test_a_model_failure_is_delivered_but_failed_never_undelivered(
        eliza: ElizaServer, model: FakeModelServer, client: AgentClient) -> None:
    someone = user()
    model.reply("", actions=["IGNORE"])
    client.send_message(eliza.url, eliza.agent_id, "an earlier message it ignored", someone, timeout=TIMEOUT)
    model.fail()
    with pytest.raises(AgentFailed, match="failed to reply") as caught:
        client.send_message(eliza.url, eliza.agent_id, "what is the time?", someone, timeout=TIMEOUT)
    # The agent has it: it is in the agent's memory, so sending it again would repeat it.
    memories = httpx.get(f"{eliza.url}/api/memory/{eliza.eliza_id()}/memories", headers={"X-API-KEY": eliza.key},
                         timeout=30).json()["data"]["memories"]
    assert any(m["content"].get("text") == "what is the time?" for m in memories)
    answer = http.error_response(caught.value)
    assert answer.status_code == 502 and "Retry-After" not in answer.headers


def test_last_activity_is_the_agents_newest_memory_whoever_wrote_it(
        eliza: ElizaServer, client: AgentClient) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)  # the server's clock is this machine's
    # A message that reaches the agent without the platform (its own Discord client, say).
    httpx.post(f"{eliza.url}/api/messaging/channels/{uuid.uuid4()}/messages", timeout=TIMEOUT,
               headers={"X-API-KEY": eliza.key},
               json={"author_id": user(), "content": "hi from elsewhere", "transport": "http",
                     "message_server_id": "00000000-0000-0000-0000-000000000000",
                     "metadata": {"isDm": True, "targetUserId": eliza.eliza_id()}})
    active = client.last_activity(eliza.url, eliza.agent_id)
    assert active is not None and active >= before
    assert client.last_activity(eliza.url, eliza.agent_id, eliza.eliza_id()) == active
