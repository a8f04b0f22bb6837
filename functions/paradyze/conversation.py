"""An agent's conversation as the platform keeps it: each delivered message and the agent's replies.

One conversation per (agent, sender), as the agent itself keeps one channel per (agent, user), so a
user sees what they said to their agent and what it answered, and the admin sees the admin's own.
"""

from __future__ import annotations

from typing import Any

from . import db
from .auth import Caller
from .conversation_repository import StoredMessage, recent_messages
from .instances import require_agent


def sender(caller: Caller) -> str:
    """Whose conversation with the agent a message belongs to: the same name the agent is told
    (agent_client.send_message's user_id)."""
    return caller.user_id or "admin"


def turns(text: str, replies: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A delivered message and its replies as the (role, text) turns the conversation keeps, in
    order; messaging writes them in the message's own transaction (delivery_repository)."""
    return [("user", text)] + [("agent", str(r.get("text") or "")) for r in replies]


def history(caller: Caller, agent_id: str, limit: int) -> list[StoredMessage]:
    """The caller's last `limit` turns with the agent, oldest first. Raises NotFound when the agent
    does not exist or is not the caller's (read as the caller, under row-level security)."""
    with db.transaction(caller) as conn:
        require_agent(conn, agent_id)
        return recent_messages(conn, agent_id=agent_id, sender=sender(caller), limit=limit)
