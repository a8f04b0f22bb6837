"""Calls to private Cloud Run agents carry a Google ID token for the agent's URL, fetched once and cached."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from paradyze import agent_keys
from paradyze.agent_client import AgentClient
from paradyze.errors import AgentUnreachable
from paradyze.identity import IdTokenAuth
from paradyze.settings import get_settings

AGENT = str(uuid.uuid4())
URL = "https://agent-abc-uc.a.run.app"


def id_token(audience: str, lifetime_s: int = 3600) -> str:
    return jwt.encode({"aud": audience, "exp": int(time.time()) + lifetime_s}, "k" * 32, algorithm="HS256")


class Agent:
    """A MockTransport agent that answers health only with a bearer token, recording what it was sent."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        ok = request.headers.get("Authorization", "").startswith("Bearer ")
        return httpx.Response(200 if ok else 403, json={"status": "OK"})


def test_private_agents_are_called_with_a_cached_id_token() -> None:
    audiences: list[str] = []

    def fetch(audience: str) -> str:
        audiences.append(audience)
        return id_token(audience)

    agent = Agent()
    with AgentClient(auth=IdTokenAuth([".run.app"], fetch), transport=httpx.MockTransport(agent)) as client:
        assert client.is_healthy(URL, AGENT) and client.is_healthy(URL, AGENT)
    assert audiences == [URL], "one fetch for the agent's URL, then the cache"
    claims = jwt.decode(agent.seen[0].headers["Authorization"].removeprefix("Bearer "),
                        options={"verify_signature": False})
    assert claims["aud"] == URL
    # The agent's own key travels beside the token: Cloud Run consumes Authorization, ElizaOS X-API-KEY.
    assert agent.seen[0].headers["X-API-KEY"] == agent_keys.api_key(AGENT)


def test_a_token_about_to_expire_is_fetched_again() -> None:
    fetched: list[str] = []

    def fetch(audience: str) -> str:
        fetched.append(audience)
        return id_token(audience, lifetime_s=60)  # inside the five minutes kept in hand

    with AgentClient(auth=IdTokenAuth([".run.app"], fetch), transport=httpx.MockTransport(Agent())) as client:
        client.is_healthy(URL, AGENT)
        client.is_healthy(URL, AGENT)
    assert fetched == [URL, URL]


def test_other_hosts_get_no_token() -> None:
    agent = Agent()
    auth = IdTokenAuth([".run.app"], lambda audience: pytest.fail("no token for other hosts"))
    with AgentClient(auth=auth, transport=httpx.MockTransport(agent)) as client:
        assert client.is_healthy("http://127.0.0.1:3000", AGENT) is False
    assert "Authorization" not in agent.seen[0].headers


def test_settings_choose_the_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    monkeypatch.setattr(settings, "cloud_run_invoker", None)
    assert IdTokenAuth.from_settings(settings) is None
    monkeypatch.setattr(settings, "cloud_run_invoker", "platform@p.iam.gserviceaccount.com")
    monkeypatch.setattr(settings, "id_token_hosts", ".run.app, .example.internal")
    auth = IdTokenAuth.from_settings(settings)
    assert auth is not None and auth.hosts == [".run.app", ".example.internal"]
    monkeypatch.setattr(settings, "cloud_run_public", True)
    assert IdTokenAuth.from_settings(settings) is None


def test_no_credentials_means_not_healthy_and_unreachable_rather_than_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth.exceptions
    import google.oauth2.id_token

    def no_credentials(request: object, audience: str) -> str:
        raise google.auth.exceptions.DefaultCredentialsError("no credentials here")

    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", no_credentials)
    agent = Agent()
    with AgentClient(auth=IdTokenAuth([".run.app"]), transport=httpx.MockTransport(agent)) as client:
        assert client.is_healthy(URL, AGENT) is False
        with pytest.raises(AgentUnreachable, match="identity token"):
            client.send_message(URL, AGENT, "hi", "user-1", eliza_agent_id=str(uuid.uuid4()))
    assert agent.seen == [], "nothing is sent without the token"
