"""The one place the platform speaks to a running agent over HTTP: the ElizaOS 1.7.2 REST API.

Every call carries the agent's own key (`X-API-KEY`, agent_keys.api_key), which ElizaOS requires
under /api when ELIZA_SERVER_AUTH_TOKEN is set; private Cloud Run agents also get an ID token
from the client's `auth`.
"""

from __future__ import annotations

import functools
import json as jsonlib
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from . import agent_keys, telemetry
from .agent_http import AgentHttpError, ConnectFailed, HttpxTransport, KeepAlive, Reply, TimedOut, Transport
from .eliza_answers import error_text, json_body, parse_time, public_replies, raise_for_status
from .errors import AgentFailed, AgentStartFailed, AgentUnreachable, ParadyzeError
from .identity import IdTokenAuth
from .settings import get_settings

_POLL_S = 0.1
_INFO_TIMEOUT = 5.0
# Turns (agent, user) into the conversation's channel id, and user ids that are not UUIDs into UUIDs.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://paradyze/agent-client")
# ElizaOS's message server when data isolation is off (the server's DEFAULT_SERVER_ID).
_DEFAULT_MESSAGE_SERVER = "00000000-0000-0000-0000-000000000000"
# What ElizaOS answers with 500 once it has stored the message and the agent's processing failed
# (or, in 1.7.2, the agent chose IGNORE and the reply could not be serialised).
_PROCESSING_FAILED = "Failed to process message in HTTP transport"


class AgentClient:
    """An HTTP client for running agents over kept-alive connections (agent_http); close() it when done.

    Thread-safe. `auth` adds what the agents' host needs (IdTokenAuth for private Cloud Run);
    `transport` is for tests (httpx.MockTransport).
    """

    def __init__(self, *, auth: IdTokenAuth | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self._http: Transport = HttpxTransport(transport) if transport is not None else KeepAlive()
        self._auth = auth
        self._health_path = get_settings().agent_health_path
        self._message_servers: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- health and identity ---------------------------------------------------------------------

    def is_healthy(self, url: str, agent_id: str, timeout: float = 2.0) -> bool:
        """True when the agent's health endpoint answers 2xx within timeout, to its own key."""
        try:
            return self._send("GET", _join(url, self._health_path), agent_id, timeout=timeout).is_success
        except (AgentHttpError, ParadyzeError):
            return False

    def wait_healthy(self, url: str, agent_id: str, deadline_s: float,
                     is_alive: Callable[[], bool] | None = None) -> None:
        """Poll health until it answers; deadline_s is how many seconds to wait from now.

        Raises AgentStartFailed when the time is up, or at once when is_alive() says the process died.
        """
        until = time.monotonic() + deadline_s
        while True:
            if is_alive is not None and not is_alive():
                raise AgentStartFailed(f"the agent process exited before {url} became healthy")
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise AgentStartFailed(f"the agent at {url} was not healthy within {deadline_s:g}s")
            if self.is_healthy(url, agent_id, timeout=min(2.0, max(remaining, 0.05))):
                return
            time.sleep(min(_POLL_S, max(until - time.monotonic(), 0)))

    def agent_info(self, url: str, agent_id: str) -> dict[str, Any]:
        """The agent the server lists (GET /api/agents) under agent_id, else the first, as {"id", "name", ...}.

        Raises AgentUnreachable when the server does not answer, fails, or lists no agent.
        """
        body = self._get_json(url, "/api/agents", agent_id)
        data = body.get("data") if isinstance(body, dict) else None
        agents = data.get("agents") if isinstance(data, dict) else None
        if not isinstance(agents, list) or not agents or not isinstance(agents[0], dict) or not agents[0].get("id"):
            raise AgentUnreachable(f"the agent server at {url} lists no agent")
        # A server shared by an owner's agents lists them all; each runs under the platform's id.
        first = next((a for a in agents if isinstance(a, dict) and a.get("id") == agent_id), agents[0])
        return {**first, "id": str(first["id"]), "name": str(first.get("name") or "")}

    def last_activity(self, url: str, agent_id: str, eliza_agent_id: str | None = None) -> datetime | None:
        """When the agent last wrote a memory (any message, from any of its clients), or None.

        ElizaOS lists an agent's memories newest first (GET /api/memory/{id}/memories). A server
        without that route answers with the `last_activity` of its health report, if any.
        """
        try:
            eliza_id = self._eliza_id(url, agent_id, eliza_agent_id)
            response = self._send("GET", _join(url, f"/api/memory/{eliza_id}/memories"), agent_id,
                                  timeout=_INFO_TIMEOUT)
            if response.status_code == 404:
                health = self._send("GET", _join(url, self._health_path), agent_id, timeout=_INFO_TIMEOUT)
                return parse_time(health.json().get("last_activity")) if health.is_success else None
            memories = ((response.json() or {}).get("data") or {}).get("memories") if response.is_success else None
        except (AgentHttpError, ParadyzeError, ValueError, AttributeError):
            return None
        stamps = [m.get("createdAt") for m in memories or [] if isinstance(m, dict)]
        return max((t for t in map(parse_time, stamps) if t is not None), default=None)

    # --- messages --------------------------------------------------------------------------------

    def send_message(self, url: str, agent_id: str, text: str, user_id: str, *,
                     eliza_agent_id: str | None = None, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Send text to the agent as user_id and return its replies: {"text", "actions"?, "attachments"?}.

        One conversation per (agent, user): the message goes to a channel whose id is derived from
        both, POST /api/messaging/channels/{id}/messages with transport "http", which ElizaOS
        creates on first use (a DM with the agent), keeps in the agent's database, and answers
        synchronously. So the agent sees what was said before a hibernate, wake or restart. A
        reply carries text, actions and attachments only, never the agent's thought or reasoning.

        An agent that chooses not to answer (IGNORE) gives an empty list. Raises AgentUnreachable
        when the message did not reach the agent (not listening, refused, unknown agent),
        AgentFailed when it did but the agent failed to reply (sending it again would repeat it),
        and BadRequest when the agent rejects the message itself (e.g. too long).
        """
        deadline = time.monotonic() + timeout
        eliza_id = self._eliza_id(url, agent_id, eliza_agent_id)
        user = user_id if _is_uuid(user_id) else str(uuid.uuid5(_NAMESPACE, f"user:{user_id}"))
        # The platform's agent id, not ElizaOS's: that one changes when the character is renamed.
        channel = str(uuid.uuid5(_NAMESPACE, f"channel:{agent_id}:{user}"))
        body = {
            "author_id": user, "content": text, "message_server_id": self._message_server(url, agent_id),
            "source_type": "user", "transport": "http",
            "metadata": {"isDm": True, "channelType": "DM", "targetUserId": eliza_id, "source": "paradyze"},
        }
        path = f"/api/messaging/channels/{channel}/messages"
        try:
            response = self._send("POST", _join(url, path), agent_id, timeout=_left(deadline), json=body)
        except ConnectFailed as exc:
            raise AgentUnreachable(f"cannot reach the agent at {url}: {exc}") from exc
        except TimedOut as exc:
            raise AgentFailed(f"the agent did not reply within {timeout:.0f}s") from exc
        except AgentHttpError as exc:
            raise AgentFailed(f"the connection broke before the agent replied ({exc})") from exc
        if response.status_code == 500 and error_text(response) == _PROCESSING_FAILED:
            if self._ignored(url, agent_id, eliza_id, channel, user, text):
                return []
            raise AgentFailed("the agent failed to reply")
        raise_for_status(response, f"POST {path}")
        answer = json_body(response, f"POST {path}")
        return public_replies(answer.get("agentResponse") if isinstance(answer, dict) else None)

    def _eliza_id(self, url: str, agent_id: str, known: str | None) -> str:
        """ElizaOS's id for the agent: the one the platform recorded, else the one the server lists."""
        return known if known is not None and _is_uuid(known) else str(self.agent_info(url, agent_id)["id"])

    def _ignored(self, url: str, agent_id: str, eliza_id: str, channel: str, user: str, text: str) -> bool:
        """Whether the agent's memory shows it chose IGNORE for this message (ElizaOS 1.7.2 answers
        that with a 500: the reply it builds then holds itself and cannot be serialised)."""
        try:
            body = self._get_json(url, f"/api/memory/{eliza_id}/memories?roomId={channel}", agent_id)
            memories = list(body["data"]["memories"])
        except (ParadyzeError, LookupError, TypeError):
            return False
        for memory in memories:  # newest first
            content = memory.get("content") if isinstance(memory, dict) else None
            if not isinstance(content, dict):
                continue
            if memory.get("entityId") == user and content.get("text") == text:
                return False  # reached our own message: nothing the agent wrote after it says IGNORE
            if memory.get("entityId") == eliza_id and (
                    content.get("actionName") == "IGNORE" or "IGNORE" in (content.get("actions") or [])):
                return True
        return False

    def _message_server(self, url: str, agent_id: str) -> str:
        base = url.rstrip("/")
        with self._lock:
            known = self._message_servers.get(base)
        if known:
            return known
        try:
            body = self._get_json(url, "/api/messaging/message-server/current", agent_id)
        except AgentUnreachable:
            return _DEFAULT_MESSAGE_SERVER  # the message itself will say whether the agent answers
        data = body.get("data") if isinstance(body, dict) else None
        listed = data.get("messageServerId") if isinstance(data, dict) else None
        found = str(listed or _DEFAULT_MESSAGE_SERVER)
        with self._lock:
            if len(self._message_servers) > 1024:  # ports are reused: forget the oldest agents
                self._message_servers.clear()
            self._message_servers[base] = found
        return found

    # --- plumbing --------------------------------------------------------------------------------

    @telemetry.traced("agent.http", telemetry.SpanKind.CLIENT)
    def _send(self, method: str, url: str, agent_id: str, *, timeout: float, json: Any = None) -> Reply:
        """One call with the agent's key; the auth's own failures (no ID token) become AgentUnreachable.
        Raises AgentHttpError (agent_http) when no answer came."""
        headers = {"X-API-KEY": agent_keys.api_key(agent_id), **telemetry.outgoing_headers()}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        try:
            if self._auth is not None:
                headers.update(self._auth.headers_for(url))
        except ParadyzeError as exc:
            raise AgentUnreachable(f"cannot call the agent at {url}: {exc.message}") from exc
        return self._http.request(method, url, headers=headers, body=body, timeout=timeout)

    def _get_json(self, url: str, path: str, agent_id: str) -> Any:
        try:
            response = self._send("GET", _join(url, path), agent_id, timeout=_INFO_TIMEOUT)
        except AgentHttpError as exc:
            raise AgentUnreachable(f"cannot reach the agent at {url}: {type(exc).__name__}") from exc
        raise_for_status(response, f"GET {path}")
        return json_body(response, f"GET {path}")


def get_client() -> AgentClient:
    """The process's client: made on first use and kept, as its connection pool is the point."""
    settings = get_settings()
    return _client_for(settings.cloud_run_public, settings.cloud_run_invoker, settings.id_token_hosts)


@functools.cache
def _client_for(public: bool, invoker: str | None, hosts: str) -> AgentClient:
    # Keyed by the settings that choose the auth (just read by get_client), so a change of them
    # is never served a client made for the old ones.
    return AgentClient(auth=IdTokenAuth.from_settings(get_settings()))


def _left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AgentUnreachable("the agent did not answer in time")
    return remaining


def _join(url: str, path: str) -> str:
    return url.rstrip("/") + "/" + path.lstrip("/")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True
