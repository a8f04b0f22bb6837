"""Calls to private Cloud Run agents carry a Google ID token for the agent's URL, fetched once and cached."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from paradyze import agent_client, identity
from paradyze.settings import get_settings


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Private agents on 127.0.0.1, and a stand-in for Google's token fetch that records each audience."""
    import google.oauth2.id_token

    audiences: list[str] = []

    def fetch(request: object, audience: str) -> str:
        audiences.append(audience)
        return jwt.encode({"aud": audience, "exp": int(time.time()) + 3600}, "k" * 32, algorithm="HS256")

    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", fetch)
    settings = get_settings()
    monkeypatch.setattr(settings, "cloud_run_invoker", "platform@p.iam.gserviceaccount.com")
    monkeypatch.setattr(settings, "id_token_hosts", "127.0.0.1")
    monkeypatch.setattr(identity, "_cache", {})
    yield audiences


@pytest.fixture
def agent() -> Iterator[tuple[str, list[str | None]]]:
    """A tiny agent that answers health only with a bearer token, and records what it was sent."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.send_response(200 if self.headers.get("Authorization", "").startswith("Bearer ") else 403)
            self.end_headers()
            self.wfile.write(b'{"status": "OK"}')

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_private_agents_are_called_with_a_cached_id_token(tokens: list[str], agent: tuple) -> None:
    url, seen = agent
    assert agent_client.is_healthy(url) and agent_client.is_healthy(url)
    assert tokens == [url], "one fetch for the agent's URL, then the cache"
    claims = jwt.decode(seen[0].removeprefix("Bearer "), options={"verify_signature": False})
    assert claims["aud"] == url


def test_other_hosts_and_public_agents_get_no_token(tokens: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert identity.headers_for("http://localhost:3000/api/server/health") == {}
    monkeypatch.setattr(get_settings(), "cloud_run_public", True)
    assert identity.headers_for("http://127.0.0.1:3000/api/server/health") == {}
    assert tokens == []


def test_no_credentials_means_not_healthy_rather_than_a_crash(
        agent: tuple, monkeypatch: pytest.MonkeyPatch, tokens: list[str]) -> None:
    import google.auth.exceptions
    import google.oauth2.id_token

    def no_credentials(request: object, audience: str) -> str:
        raise google.auth.exceptions.DefaultCredentialsError("no credentials here")

    monkeypatch.setattr(google.oauth2.id_token, "fetch_id_token", no_credentials)
    assert agent_client.is_healthy(agent[0]) is False
