"""The SQL of agents' conversations. Parameterised; services own the transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Conn


@dataclass(frozen=True)
class StoredMessage:
    role: str
    text: str
    at: datetime


def recent_messages(conn: Conn, *, agent_id: str, sender: str, limit: int) -> list[StoredMessage]:
    """The last `limit` turns of the (agent, sender) conversation, oldest first."""
    rows = conn.execute(
        "select role, text, at from (select id, role, text, at from public.agent_messages"
        "  where agent_id = %s and sender = %s order by id desc limit %s) last order by id",
        (agent_id, sender, limit),
    ).fetchall()
    return [StoredMessage(role=r["role"], text=r["text"], at=r["at"]) for r in rows]
