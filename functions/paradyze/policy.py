"""Policy edits: idle timeout, opt-out, and schedules (whose jobs the scheduler then follows)."""

from __future__ import annotations

from typing import Any

from . import db, queries, repository
from .agents import AgentPublic, PolicyUpdate
from .auth import Caller
from .instances import require_row
from .scheduler.sync import sync_stored_agent


def update_policy(caller: Caller, cmd: PolicyUpdate) -> AgentPublic:
    """Change what was given; schedules, when given, replace the agent's schedules. Raises NotFound."""
    fields: dict[str, Any] = {}
    if cmd.idle_timeout_minutes is not None:
        fields["idle_timeout_minutes"] = cmd.idle_timeout_minutes
    if cmd.auto_hibernate is not None:
        fields["auto_hibernate"] = cmd.auto_hibernate
    schedules = [s.model_dump() for s in cmd.schedules] if cmd.schedules is not None else None
    with db.transaction(caller) as conn:
        row = require_row(conn, cmd.agent_id)  # ownership, through RLS
        user_id = str(row["user_id"])
        with db.as_service_role(conn):
            if fields:
                repository.update_agent(conn, cmd.agent_id, **fields)
            if schedules is not None:
                repository.replace_schedules(conn, cmd.agent_id, user_id, schedules)
            repository.insert_event(conn, agent_id=cmd.agent_id, user_id=user_id, from_status=row["status"],
                                    to_status=row["status"], actor=caller.actor, reason="policy updated",
                                    details={**fields, "schedules": schedules or []})
    if schedules is not None:
        sync_stored_agent(cmd.agent_id)
    return queries.get(caller, cmd.agent_id)
