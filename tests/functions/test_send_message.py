"""send_message through the function: what a user gets back, and the two kinds of failure."""

from __future__ import annotations

import pytest

from helpers import Functions, User, fixture_characters
from paradyze.agent_client import AgentClient
from paradyze.errors import AgentFailed, AgentUnreachable


def create(functions: Functions, user: User, cleanup: list[str]) -> dict:
    resp = functions.post("create_agent", user.token, {"character": fixture_characters()["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    return resp.get_json()["agent"]


def test_a_reply_has_text_and_actions_but_not_the_agents_thought(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "hello, who are you?"})
    assert resp.status_code == 200, resp.get_json()
    (reply,) = resp.get_json()["replies"]
    # The reference agent answers as ElizaOS does, thought included; users see none of it.
    assert set(reply) == {"text", "actions"} and reply["text"].strip() and reply["actions"] == ["REPLY"]


@pytest.mark.parametrize(("error", "status", "retry"), [
    (AgentFailed("the agent failed to reply"), 502, False),
    (AgentUnreachable("cannot reach the agent at http://127.0.0.1:1: ConnectError"), 503, True),
], ids=["delivered-but-failed", "undelivered"])
def test_a_delivered_message_is_never_reported_undelivered(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch,
        error: Exception, status: int, retry: bool) -> None:
    agent = create(functions, alice, cleanup_agents)

    def fail(*args: object, **kwargs: object) -> list[dict[str, object]]:
        raise error

    monkeypatch.setattr(AgentClient, "send_message", fail)
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "are you there?"})
    assert resp.status_code == status
    message = resp.get_json()["error"]["message"]
    assert ("Retry-After" in resp.headers) is retry
    if retry:
        assert "not delivered" in message
    else:
        assert "was delivered" in message and "not delivered" not in message
