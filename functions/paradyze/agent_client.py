"""The one place the platform speaks to a running agent over HTTP (ElizaOS REST API)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlparse

import requests

from . import identity
from .errors import AgentStartFailed, AgentUnreachable, BadRequest, RuntimeUnavailable
from .settings import get_settings

_POLL_S = 0.075
_REPLY_POLL_S = 0.25
_INFO_TIMEOUT = 5.0
_SESSION_CACHE_MAX = 1024
# Turns user ids that are not UUIDs into stable UUIDs: the Sessions API accepts nothing else.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://paradyze/agent-client")

# (base url, agent id, user id) -> session id, so one user's messages share one conversation.
_sessions: OrderedDict[tuple[str, str, str], str] = OrderedDict()
# Base URLs found to have no Sessions API (ElizaOS 0.x); they get the classic endpoint straight away.
_classic_only: set[str] = set()
_lock = threading.Lock()


class _NoSessionsApiError(Exception):
    """The server has no Sessions API; the classic 0.x endpoint is the way in."""


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    """True when the agent's health endpoint answers 2xx within timeout."""
    try:
        response = requests.get(_join(url, get_settings().agent_health_path), timeout=timeout,
                                headers=identity.headers_for(url))
    except (requests.RequestException, RuntimeUnavailable):
        return False
    return response.ok


def last_activity(url: str, timeout: float = 2.0) -> datetime | None:
    """The agent's own report of its last activity (its heartbeat), when its health carries one."""
    try:
        response = requests.get(_join(url, get_settings().agent_health_path), timeout=timeout,
                                headers=identity.headers_for(url))
        value = response.json().get("last_activity") if response.ok else None
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except (requests.RequestException, RuntimeUnavailable, ValueError, AttributeError):
        return None


def wait_healthy(url: str, deadline_s: float, is_alive: Callable[[], bool] | None = None) -> None:
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
        if is_healthy(url, timeout=min(2.0, max(remaining, 0.05))):
            return
        time.sleep(min(_POLL_S, max(until - time.monotonic(), 0)))


def agent_info(url: str) -> dict[str, Any]:
    """The first agent the server lists (GET /api/agents), as {"id", "name", ...}.

    Raises AgentUnreachable when the server does not answer, fails, or lists no agent.
    """
    body = _request("GET", _join(url, "/api/agents"), timeout=_INFO_TIMEOUT)
    data = body.get("data") if isinstance(body, dict) else None
    agents = data.get("agents") if isinstance(data, dict) else None
    if not isinstance(agents, list) or not agents or not isinstance(agents[0], dict) or not agents[0].get("id"):
        raise AgentUnreachable(f"the agent server at {url} lists no agent")
    first = agents[0]
    return {**first, "id": str(first["id"]), "name": str(first.get("name") or "")}


def send_message(url: str, agent_ref: str, text: str, user_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Send text to the agent as user_id and return its replies, each a dict with at least "text".

    Endpoint choice: the ElizaOS 1.x Sessions API, POST /api/messaging/sessions once per
    (agent, user), then POST /api/messaging/sessions/{id}/messages with transport "http"
    (and the legacy mode "sync"), which waits for the agent and answers its reply in
    "agentResponse". It is ElizaOS's documented synchronous path; the older channel endpoints
    only deliver replies over Socket.IO. A server that takes the message but leaves out
    "agentResponse" (a 1.x release before the sync transport) is polled on
    GET .../messages for the agent's answer. A server without the Sessions API (404 on
    create; ElizaOS 0.x) gets the classic POST /{agent_ref}/message, which answers the list.
    agent_ref is the agent's id or name; a name is resolved through GET /api/agents.
    An expired or forgotten session (agent restarted) is recreated once.

    An agent that chooses not to answer gives an empty list. Raises AgentUnreachable on
    connection errors, timeouts, 5xx and unknown agents (chained from the cause), and
    BadRequest when the agent rejects the message itself (4xx, e.g. too long).
    """
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout
    classic_first = base in _classic_only
    if not classic_first:
        try:
            return _send_in_session(base, agent_ref, text, user_id, deadline)
        except _NoSessionsApiError:
            with _lock:
                _classic_only.add(base)
    try:
        return _send_classic(base, agent_ref, text, user_id, deadline)
    except _GoneError as exc:
        if classic_first:
            # Ports are reused: another kind of server may listen there now.
            with _lock:
                _classic_only.discard(base)
            try:
                return _send_in_session(base, agent_ref, text, user_id, deadline)
            except _NoSessionsApiError:
                pass
        raise AgentUnreachable(f"the server at {base} does not run agent {agent_ref!r}") from exc


def _send_in_session(base: str, agent_ref: str, text: str, user_id: str, deadline: float) -> list[dict[str, Any]]:
    agent_id = _agent_uuid(base, agent_ref, deadline)
    user_uuid = user_id if _is_uuid(user_id) else str(uuid.uuid5(_NAMESPACE, f"user:{user_id}"))
    key = (base, agent_id, user_uuid)
    session_id = _session_for(key, deadline)
    try:
        body = _post_message(base, session_id, text, deadline)
    except _GoneError:
        # The session expired or the agent restarted and forgot it: start a new one, once.
        with _lock:
            _sessions.pop(key, None)
        session_id = _session_for(key, deadline)
        try:
            body = _post_message(base, session_id, text, deadline)
        except _GoneError as exc:
            raise AgentUnreachable(f"the agent at {base} lost a session it had just created") from exc
    if not isinstance(body, dict):
        raise AgentUnreachable(f"the agent at {base} answered an unexpected body")
    if "agentResponse" in body:
        return _replies([body["agentResponse"]] if body["agentResponse"] else [])
    return _poll_replies(base, session_id, body.get("userMessage"), deadline)


def _post_message(base: str, session_id: str, text: str, deadline: float) -> Any:
    return _request(
        "POST",
        f"{base}/api/messaging/sessions/{session_id}/messages",
        json={"content": text, "transport": "http", "mode": "sync"},
        timeout=_left(deadline),
    )


def _session_for(key: tuple[str, str, str], deadline: float) -> str:
    with _lock:
        if key in _sessions:
            _sessions.move_to_end(key)
            return _sessions[key]
    base, agent_id, user_uuid = key
    try:
        body = _request(
            "POST",
            f"{base}/api/messaging/sessions",
            json={
                "agentId": agent_id,
                "userId": user_uuid,
                "metadata": {"source": "paradyze"},
            },
            timeout=_left(deadline),
        )
    except _GoneError as exc:
        # A 404 with an agent error means the agent is unknown; a bare 404 means no such route.
        if "agent" in exc.message.lower():
            raise AgentUnreachable(f"the server at {base} does not run agent {agent_id}") from exc
        raise _NoSessionsApiError from exc
    session_id = body.get("sessionId") if isinstance(body, dict) else None
    if not isinstance(session_id, str) or not session_id:
        raise AgentUnreachable(f"the agent at {base} created no session")
    with _lock:
        _sessions[key] = session_id
        while len(_sessions) > _SESSION_CACHE_MAX:
            _sessions.popitem(last=False)
    return session_id


def _poll_replies(base: str, session_id: str, user_message: Any, deadline: float) -> list[dict[str, Any]]:
    """Wait for the agent's messages that follow ours (servers that answer over Socket.IO only)."""
    own_id = user_message.get("id") if isinstance(user_message, dict) else None
    while True:
        body = _request(
            "GET",
            f"{base}/api/messaging/sessions/{session_id}/messages",
            timeout=_left(deadline),
        )
        messages = body.get("messages") if isinstance(body, dict) else None
        newer: list[dict[str, Any]] = []
        for message in messages if isinstance(messages, list) else []:  # newest first
            if not isinstance(message, dict) or message.get("id") == own_id:
                break
            if message.get("isAgent"):
                newer.append({**message, "text": str(message.get("content") or "")})
        if newer:
            return list(reversed(newer))
        if time.monotonic() + _REPLY_POLL_S >= deadline:
            raise AgentUnreachable(f"the agent at {base} did not answer in time")
        time.sleep(_REPLY_POLL_S)


def _send_classic(base: str, agent_ref: str, text: str, user_id: str, deadline: float) -> list[dict[str, Any]]:
    body = _request(
        "POST",
        f"{base}/{quote(agent_ref, safe='')}/message",
        json={"text": text, "userId": user_id, "roomId": f"paradyze-{user_id}"},
        timeout=_left(deadline),
    )
    if not isinstance(body, list):
        raise AgentUnreachable(f"the agent at {base} answered an unexpected body")
    return _replies(body)


def _agent_uuid(base: str, agent_ref: str, deadline: float) -> str:
    if _is_uuid(agent_ref):
        return agent_ref
    try:
        body = _request("GET", f"{base}/api/agents", timeout=min(_INFO_TIMEOUT, _left(deadline)))
    except _GoneError as exc:
        raise _NoSessionsApiError from exc
    data = body.get("data") if isinstance(body, dict) else None
    for agent in (data or {}).get("agents", []) if isinstance(data, dict) else []:
        if isinstance(agent, dict) and str(agent.get("name", "")).lower() == agent_ref.lower():
            return str(agent["id"])
    raise AgentUnreachable(f"the server at {base} does not run an agent named {agent_ref!r}")


def _replies(items: list[Any]) -> list[dict[str, Any]]:
    replies = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            replies.append(item)
        elif isinstance(item, str):
            replies.append({"text": item})
    return replies


class _GoneError(Exception):
    """404 or 410: a missing route, agent or session; callers decide which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _request(method: str, url: str, *, timeout: float, json: Any = None) -> Any:
    """One HTTP call; transport failures and 5xx become AgentUnreachable, 404/410 _GoneError."""
    try:
        response = requests.request(method, url, json=json, timeout=timeout, headers=identity.headers_for(url))
    except RuntimeUnavailable as exc:
        raise AgentUnreachable(f"cannot call the agent for {method} {_path(url)}: {exc.message}") from exc
    except requests.Timeout as exc:
        raise AgentUnreachable(f"the agent did not answer {method} {_path(url)} within {timeout:.0f}s") from exc
    except requests.RequestException as exc:
        raise AgentUnreachable(f"cannot reach the agent for {method} {_path(url)}: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise AgentUnreachable(f"the agent failed {method} {_path(url)} with HTTP {response.status_code}")
    if response.status_code in (404, 410):
        raise _GoneError(_error_message(response))
    if response.status_code >= 400:
        raise BadRequest(f"the agent rejected the message: {_error_message(response)}")
    try:
        return response.json()
    except ValueError as exc:
        raise AgentUnreachable(f"the agent answered {method} {_path(url)} with non-JSON") from exc


def _error_message(response: requests.Response) -> str:
    """The agent's own error text, from either ElizaOS envelope ({"error": str} or {"error": {...}})."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:300] if error else f"HTTP {response.status_code}"


def _left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AgentUnreachable("the agent did not answer in time")
    return remaining


def _join(url: str, path: str) -> str:
    return url.rstrip("/") + "/" + path.lstrip("/")


def _path(url: str) -> str:
    return urlparse(url).path or "/"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True
