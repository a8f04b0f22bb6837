"""Policy edits (idle timeout, opt-out, schedules) and keeping the scheduler's jobs in step."""

from __future__ import annotations

import logging
from typing import Any

from . import db, queries, repository
from .agents import AgentPublic, PolicyUpdate
from .auth import SYSTEM, Caller
from .instances import require_row
from .scheduler_sync import get_job_sink, sync_all
from .scheduler_sync import sync_agent as _sync_agent
from .settings import get_settings

log = logging.getLogger(__name__)


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
        sync_agent(cmd.agent_id)
    return queries.get(caller, cmd.agent_id)


def sync_agent(agent_id: str, *, removed: bool = False) -> None:
    """Make the scheduler's jobs for one agent equal to its stored schedules."""
    with db.transaction(SYSTEM) as conn:
        rows = [] if removed else repository.list_schedules(conn, [agent_id])
    _sync_agent(get_job_sink(get_settings()), get_settings().instance, agent_id, rows)


def sync_everything() -> dict[str, list[str]]:
    """Every job of this instance, platform jobs included: run at deploy and start-up to repair drift.

    Raises Unavailable when the scheduler cannot be reached.
    """
    with db.transaction(SYSTEM) as conn:
        by_agent: dict[str, list[dict[str, Any]]] = {}
        for s in repository.all_schedules(conn):
            by_agent.setdefault(str(s["agent_id"]), []).append(s)
        for a in repository.list_agents(conn, limit=1_000_000):
            by_agent.setdefault(str(a["id"]), [])
    result = sync_all(get_job_sink(get_settings()), get_settings(), by_agent)
    return {"created": result.created, "updated": result.updated, "deleted": result.deleted,
            "unchanged": result.unchanged}
