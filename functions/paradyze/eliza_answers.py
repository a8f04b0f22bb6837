"""What ElizaOS 1.7.2 answers, read: replies as users see them, its errors as domain errors, its times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .agent_http import Reply
from .errors import AgentUnreachable, BadRequest

_QUIET_ACTIONS = {"IGNORE", "NONE"}


def public_replies(response: Any) -> list[dict[str, Any]]:
    """What users see of ElizaOS's reply Content: text, actions, attachments; no thought or reasoning."""
    if not isinstance(response, dict):
        return []
    text = response.get("text") if isinstance(response.get("text"), str) else ""
    actions = [a for a in response.get("actions") or [] if isinstance(a, str)]
    attachments = [a for a in response.get("attachments") or [] if isinstance(a, dict)]
    if not text and not attachments and all(a.upper() in _QUIET_ACTIONS for a in actions):
        return []
    reply: dict[str, Any] = {"text": text}
    if actions:
        reply["actions"] = actions
    if attachments:
        reply["attachments"] = attachments
    return [reply]


def raise_for_status(response: Reply, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    if status in (401, 403):
        raise AgentUnreachable(f"the agent refused the platform's key for {what} (HTTP {status})")
    if status == 404:
        raise AgentUnreachable(f"the agent server does not serve {what}: {error_text(response)}")
    if status >= 500 or status in (408, 429):
        raise AgentUnreachable(f"the agent failed {what} with HTTP {status}: {error_text(response)}")
    raise BadRequest(f"the agent rejected the message: {error_text(response)}")


def json_body(response: Reply, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise AgentUnreachable(f"the agent answered {what} with non-JSON") from exc


def error_text(response: Reply) -> str:
    """The agent's own error text, from either ElizaOS envelope ({"error": str} or {"error": {...}})."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:300] if error else f"HTTP {response.status_code}"


def parse_time(value: Any) -> datetime | None:
    """ElizaOS's epoch milliseconds, or an ISO 8601 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
