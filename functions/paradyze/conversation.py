"""An agent's conversation as the platform keeps it: each delivered message and the agent's replies.

One conversation per (agent, sender), as the agent itself keeps one channel per (agent, user), so a
user sees what they said to their agent and what it answered, and the admin sees the admin's own.
"""

from __future__ import annotations

from typing import Any

from . import db
from .agents import Agent
from .auth import Caller
from .conversation_repository import StoredMessage, insert_messages, recent_messages
from .db import Conn
from .instances import require_agent


def _sender(caller: Caller) -> str:
    # The same name the agent is told (agent_client.send_message's user_id).
    return caller.user_id or "admin"


def record(conn: Conn, caller: Caller, agent: Agent, text: str, replies: list[dict[str, Any]]) -> None:
    """Keep a delivered message and its replies, in order, in the message's own transaction."""
    turns = [("user", text)] + [("agent", str(r.get("text") or "")) for r in replies]
    insert_messages(conn, agent_id=agent.id, owner_id=agent.user_id, sender=_sender(caller), turns=turns)


def history(caller: Caller, agent_id: str, limit: int) -> list[StoredMessage]:
    """The caller's last `limit` turns with the agent, oldest first. Raises NotFound when the agent
    does not exist or is not the caller's (read as the caller, under row-level security)."""
    with db.transaction(caller) as conn:
        require_agent(conn, agent_id)
        return recent_messages(conn, agent_id=agent_id, sender=_sender(caller), limit=limit)
